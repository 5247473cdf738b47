// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "mediagw",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mediagw", targets: ["mediagw"]),
        .executable(name: "mediagw-bench", targets: ["MediaBench"]),
        .library(name: "MediaCore", targets: ["MediaCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // MARK: Domain: no Hummingbird, PostgresNIO or C module in here.
        .target(
            name: "MediaCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: C libraries (system-library targets)
        .systemLibrary(name: "CRados"),
        .systemLibrary(name: "CVips", pkgConfig: "vips"),
        .target(name: "CVipsShim", dependencies: ["CVips"], linkerSettings: [.linkedLibrary("z")]),
        .systemLibrary(name: "CFFmpeg", pkgConfig: "libavformat"),
        .target(name: "CFFmpegShim", dependencies: ["CFFmpeg"]),
        // librados' C API copies every buffer; this C++ shim writes from the caller's memory instead.
        .target(
            name: "CRadosShim",
            dependencies: ["CRados"],
            linkerSettings: [.linkedLibrary("rados")]
        ),

        // MARK: Adapters: each owns one technology.
        .target(
            name: "RadosStore",
            dependencies: [
                "MediaCore",
                "CRados",
                "CRadosShim",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PostgresMetadata",
            dependencies: [
                "MediaCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "FFmpegMedia",
            dependencies: ["MediaCore", "CFFmpeg", "CFFmpegShim"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VipsImaging",
            dependencies: ["MediaCore", "CVipsShim"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MediaHTTP",
            dependencies: [
                "MediaCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            resources: [.copy("openapi.json")],
            swiftSettings: swiftSettings
        ),

        // MARK: Composition root and executables
        .target(
            name: "MediaApp",
            dependencies: [
                "MediaCore",
                "MediaHTTP",
                "VipsImaging",
                "FFmpegMedia",
                "RadosStore",
                "PostgresMetadata",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MediaIngest",
            dependencies: [
                "MediaCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "_NIOFileSystem", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MediaClient",
            dependencies: [
                "MediaCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "mediagw",
            dependencies: [
                "MediaApp",
                "MediaClient",
                "MediaCore",
                "MediaIngest",
                "PostgresMetadata",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "MediaBench",
            dependencies: [
                "MediaApp",
                "MediaCore",
                "RadosStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        .testTarget(
            name: "MediaCoreTests",
            dependencies: ["MediaCore", "MediaIngest", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "FFmpegMediaTests",
            dependencies: ["MediaCore", "FFmpegMedia"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "VipsImagingTests",
            dependencies: ["MediaCore", "VipsImaging"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MediaHTTPTests",
            dependencies: [
                "MediaCore", "MediaHTTP", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "MediaCore",
                "MediaApp",
                "MediaHTTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                "RadosStore",
                "PostgresMetadata",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    cxxLanguageStandard: .cxx17
)
