import FFmpegMedia
import Foundation
import Logging
import MediaCore
import NIOCore
import PostgresMetadata
import RadosStore
import VipsImaging

/// Connects to Ceph and PostgreSQL and says what it found, one line per finding. Used by `mediagw check`
/// and by the server before it starts.
public struct SystemCheck: Sendable {
    public struct Finding: Sendable {
        public var service: String
        public var ok: Bool
        public var message: String
    }

    public let configuration: GatewayConfiguration
    let logger: Logger

    public init(configuration: GatewayConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs every check; never throws: each failure is a finding.
    public func run() async -> [Finding] {
        async let ceph = checkCeph()
        async let postgres = checkPostgres()
        return await ceph + postgres + checkMediaLibraries()
    }

    /// The media libraries this build links, and which optional loaders and encoders they have.
    func checkMediaLibraries() -> [Finding] {
        var findings: [Finding] = []
        do {
            let images = try VipsImageProcessor()
            let loaders = images.loaders.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value ? "yes" : "no")" }.joined(separator: ", ")
            findings.append(Finding(service: "media", ok: images.loaders["jpeg"] == true && images.loaders["webp-save"] == true,
                                    message: "libvips \(VipsImageProcessor.version): \(loaders)"))
        } catch {
            findings.append(Finding(service: "media", ok: false, message: "libvips: \(error)"))
        }
        let versions = FFmpegTranscoder().versions
        findings.append(Finding(
            service: "media", ok: versions["libx264"] == "yes" && versions["aac"] == "yes",
            message: "FFmpeg \(versions["ffmpeg"] ?? "?"): libx264 encoder \(versions["libx264"] ?? "no"), aac encoder \(versions["aac"] ?? "no")"))
        return findings
    }

    func checkCeph() async -> [Finding] {
        let started = ContinuousClock.now
        let cluster: RadosCluster
        do {
            cluster = try await RadosCluster.connect(configuration.rados, pools: configuration.pools.all, logger: logger)
        } catch {
            return [Finding(service: "ceph", ok: false, message: Self.oneLine(error))]
        }
        var findings = [Finding(
            service: "ceph", ok: true,
            message: "connected as client.\(configuration.rados.clientID) to cluster \(cluster.fsid) (librados \(RadosCluster.libraryVersion)) in \(Self.milliseconds(since: started))")]
        let store = RadosObjectStore(cluster: cluster)
        for pool in configuration.pools.all {
            let probeStarted = ContinuousClock.now
            let probe = ObjectLocation(pool: pool, key: "mediagw-check-\(UUID().uuidString.lowercased())")
            do {
                try await store.writeFull(probe, bytes: ByteBuffer(string: "mediagw check"), mode: .createExclusive)
                let info = try await store.stat(probe)
                try await store.remove(probe)
                guard info.size == 13 else { throw ObjectStoreError(.other(errno: 0), "probe object came back with \(info.size) bytes") }
                findings.append(Finding(service: "ceph", ok: true, message: "pool \(pool): write, stat and remove OK in \(Self.milliseconds(since: probeStarted))"))
            } catch {
                findings.append(Finding(service: "ceph", ok: false, message: "pool \(pool): \(Self.oneLine(error))"))
            }
        }
        await cluster.shutdown()
        return findings
    }

    func checkPostgres() async -> [Finding] {
        let started = ContinuousClock.now
        let info: MetadataDatabase.ServerInfo
        do {
            info = try await MetadataDatabase.preflight(configuration.postgres, logger: logger)
        } catch {
            return [Finding(service: "postgres", ok: false, message: Self.oneLine(error))]
        }
        var findings = [Finding(
            service: "postgres", ok: true,
            message: "PostgreSQL \(info.version) at \(configuration.postgres.host):\(configuration.postgres.port), database \(info.database) as \(info.user), in \(Self.milliseconds(since: started))")]
        let database = MetadataDatabase(configuration: configuration.postgres, logger: logger)
        do {
            let version = try await withRunningClient(database.client) { try await database.schemaVersion() }
            let latest = Schema.migrations.map(\.version).max() ?? 0
            findings.append(Finding(
                service: "postgres", ok: version == latest,
                message: version == latest
                    ? "schema at version \(version) (latest)"
                    : "schema at version \(version), latest is \(latest): run 'mediagw migrate'"))
        } catch {
            findings.append(Finding(service: "postgres", ok: false, message: Self.oneLine(error)))
        }
        return findings
    }

    static func milliseconds(since start: ContinuousClock.Instant) -> String {
        let elapsed = ContinuousClock.now - start
        return String(format: "%.1f ms", elapsed.seconds * 1000)
    }

    /// The one-line, operator-facing form of an error.
    public static func oneLine(_ error: any Error) -> String {
        let text: String
        switch error {
        case let error as ObjectStoreError: text = error.message
        case let error as MetadataStoreError: text = error.message
        case let error as ConfigurationError: text = error.message
        case let error as MediaError: text = error.message
        default: text = String(describing: error)
        }
        return text.replacingOccurrences(of: "\n", with: " ")
    }
}
