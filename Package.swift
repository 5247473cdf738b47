// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // each function in a section of its own, so that the linker can place the gateway's start-up code together
    .unsafeFlags(["-Xfrontend", "-function-sections"], .when(platforms: [.linux])),
]

// The gateway is linked by lld with packed relative relocations (16 KiB of .relr.dyn instead of 1.5 MB of
// .rela.dyn entries that the loader read at every start) and with the functions that run from start to idle
// placed first
// (Sources/mediagw/startup.order, made by Deploy/tools/startup-order): the kernel maps code in blocks of
// 64 KiB around each page fault, so start-up code spread over the whole binary made most of it resident.
let gatewayLinkerSettings: [LinkerSetting] = [
    .unsafeFlags(
        [
            "-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
            "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Sources/mediagw/startup.order",
            "-Xlinker", "--no-warn-symbol-ordering",
        ],
        .when(platforms: [.linux])
    )
]

let package = Package(
    name: "mediagw",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "mediagw", targets: ["mediagw"]),
        .executable(name: "mediagw-processor", targets: ["mediagw-processor"]),
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
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        // OTLP over HTTP only: the gRPC exporter would bring gRPC in for nothing
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
    ],
    targets: [
        // MARK: Domain: model, limits, ports and use cases; no Hummingbird, PostgresNIO or C module in here.
        .target(
            name: "MediaCore",
            dependencies: [
                "MediaConcurrency",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        // Small concurrency tools: blocking work on a thread of its own, deadlines, group commit.
        .target(name: "MediaConcurrency", swiftSettings: swiftSettings),
        // In-memory implementations of the ports, fault points and a clock, and the conformance suites every
        // implementation of a port runs: for tests only.
        .target(
            name: "MediaTesting",
            dependencies: [
                "MediaCore",
                "MediaConcurrency",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: C libraries (system-library targets)
        .systemLibrary(name: "CRados"),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto"),
        // SHA-256 whose state is saved with a resumable upload's progress (OpenSSL's libcrypto)
        .target(name: "OpenSSLHashing", dependencies: ["MediaCore", "COpenSSL"], swiftSettings: swiftSettings),
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
                "MediaConcurrency",
                "CRados",
                "CRadosShim",
                .product(name: "Tracing", package: "swift-distributed-tracing"),
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
                "MediaConcurrency",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
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
            dependencies: ["MediaCore", "MediaConcurrency", "CFFmpeg", "CFFmpegShim"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "VipsImaging",
            dependencies: ["MediaCore", "MediaConcurrency", "CVipsShim"],
            swiftSettings: swiftSettings
        ),
        // The processor processes, seen from the worker (spawn, pipes, deadlines) and from the processor.
        .target(
            name: "ProcessorPool",
            dependencies: [
                "MediaCore",
                "MediaConcurrency",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MediaHTTP",
            dependencies: [
                "MediaCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            ],
            resources: [.copy("openapi.json")],
            swiftSettings: swiftSettings
        ),

        .target(
            name: "MediaIngest",
            dependencies: [
                "MediaCore",
                "MediaConcurrency",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "MediaClient",
            dependencies: [
                "MediaCore",
                "MediaIngest",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Composition root and executables
        // The one place that opens the adapters from configuration and wires the use cases; it links neither
        // libvips nor FFmpeg.
        .target(
            name: "MediaApp",
            dependencies: [
                "MediaCore",
                "MediaHTTP",
                "MediaIngest",
                "MediaClient",
                "ProcessorPool",
                "RadosStore",
                "PostgresMetadata",
                "OpenSSLHashing",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "OTel", package: "swift-otel"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The processor program's wiring: MediaApp's runtime plus libvips and FFmpeg.
        .target(
            name: "MediaProcessorApp",
            dependencies: ["MediaApp", "ProcessorPool", "VipsImaging", "FFmpegMedia"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "mediagw",
            dependencies: ["MediaApp", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            exclude: ["startup.order"],
            swiftSettings: swiftSettings,
            linkerSettings: gatewayLinkerSettings
        ),
        .executableTarget(
            name: "mediagw-processor",
            dependencies: ["MediaProcessorApp", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "MediaBench",
            dependencies: [
                "MediaApp", "VipsImaging", "FFmpegMedia", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: swiftSettings
        ),

        // MARK: Tests
        .testTarget(
            name: "MediaCoreTests",
            dependencies: [
                "MediaCore", "MediaTesting", "MediaIngest", "MediaConcurrency", "OpenSSLHashing", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MediaAppTests",
            dependencies: ["MediaApp", "RadosStore", "PostgresMetadata"],
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
                "MediaTesting",
                "MediaConcurrency",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                "RadosStore",
                "PostgresMetadata",
                "ProcessorPool",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    cxxLanguageStandard: .cxx17
)
