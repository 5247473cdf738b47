import Foundation
import Logging
import MediaCore
import NIOCore
import PostgresMetadata
import RadosStore

/// What `check` reads.
public struct CheckConfiguration: Sendable {
    public var storage: StorageConfiguration
    public var database: PostgresConfiguration
    /// The processor program, which reports on the media libraries.
    public var processorExecutable: String

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        storage = try StorageConfiguration(environment: env)
        database = try PostgresConfiguration(environment: env)
        processorExecutable = env.string("MEDIAGW_PROCESSOR_EXECUTABLE") ?? ProcessingConfiguration.besideThisProgram("mediagw-processor")
    }
}

/// One line of what a check found.
public struct CheckFinding: Sendable, Codable {
    public var service: String
    public var ok: Bool
    public var message: String

    public init(service: String, ok: Bool, message: String) {
        self.service = service
        self.ok = ok
        self.message = message
    }

    /// `ok   service: message` or `FAIL service: message`.
    public var line: String { "\(ok ? "ok  " : "FAIL") \(service): \(message)" }
}

/// Connects to Ceph and PostgreSQL and says what it found, one line per finding, and asks the processor
/// program about the media libraries. Used by `mediagw check`.
public struct SystemCheck: Sendable {
    public let configuration: CheckConfiguration
    let logger: Logger

    public init(configuration: CheckConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs every check; never throws: each failure is a finding.
    public func run() async -> [CheckFinding] {
        async let ceph = checkCeph()
        async let postgres = checkPostgres()
        async let media = checkMediaLibraries()
        return await ceph + postgres + media
    }

    /// The processor program's own report (`mediagw-processor check`, one JSON finding per line).
    func checkMediaLibraries() async -> [CheckFinding] {
        let program = configuration.processorExecutable
        guard FileManager.default.isExecutableFile(atPath: program) else {
            return [
                CheckFinding(service: "media", ok: false, message: "the processor \(program) is not an executable (MEDIAGW_PROCESSOR_EXECUTABLE)")
            ]
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = ["check"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            return [CheckFinding(service: "media", ok: false, message: "cannot run \(program): \(error)")]
        }
        let data = await Task.detached { output.fileHandleForReading.readDataToEndOfFile() }.value
        process.waitUntilExit()
        let findings = String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONDecoder().decode(CheckFinding.self, from: Data($0.utf8))
        }
        guard !findings.isEmpty else {
            return [CheckFinding(service: "media", ok: false, message: "\(program) check answered nothing (exit \(process.terminationStatus))")]
        }
        return findings
    }

    func checkCeph() async -> [CheckFinding] {
        let started = ContinuousClock.now
        let runtime: MediaRuntime
        do {
            runtime = try await MediaRuntime.connect(storage: configuration.storage, database: nil, logger: logger)
        } catch {
            return [CheckFinding(service: "ceph", ok: false, message: Self.oneLine(error))]
        }
        let pools = configuration.storage.pools.all
        return await
            (try? runtime.run { runtime in
                var findings = [
                    CheckFinding(
                        service: "ceph",
                        ok: true,
                        message:
                            "connected as client.\(configuration.storage.rados.clientID) to cluster \(runtime.cephFSID) (librados \(RadosCluster.libraryVersion)) in \(Self.milliseconds(since: started))"
                    )
                ]
                let blobs = runtime.blobs
                for pool in pools {
                    let probeStarted = ContinuousClock.now
                    let probe = ObjectLocation(pool: pool, key: "mediagw-check-\(UUID().uuidString.lowercased())")
                    do {
                        try await blobs.write(probe, bytes: ByteBuffer(string: "mediagw check"), mode: .createExclusive)
                        let info = try await blobs.stat(probe)
                        try await blobs.remove(probe)
                        guard info.size == 13 else { throw BlobStoreError(.other, "probe object came back with \(info.size) bytes") }
                        findings.append(
                            CheckFinding(
                                service: "ceph",
                                ok: true,
                                message: "pool \(pool): write, stat and remove OK in \(Self.milliseconds(since: probeStarted))"
                            )
                        )
                    } catch {
                        findings.append(CheckFinding(service: "ceph", ok: false, message: "pool \(pool): \(Self.oneLine(error))"))
                    }
                }
                return findings
            }) ?? [CheckFinding(service: "ceph", ok: false, message: "the check did not finish")]
    }

    func checkPostgres() async -> [CheckFinding] {
        let started = ContinuousClock.now
        let info: MetadataDatabase.ServerInfo
        let database = configuration.database
        do {
            info = try await MetadataDatabase.preflight(database, logger: logger)
        } catch {
            return [CheckFinding(service: "postgres", ok: false, message: Self.oneLine(error))]
        }
        var findings = [
            CheckFinding(
                service: "postgres",
                ok: true,
                message:
                    "PostgreSQL \(info.version) at \(database.host):\(database.port), database \(info.database) as \(info.user), in \(Self.milliseconds(since: started))"
            )
        ]
        do {
            let runtime = try await MediaRuntime.connect(storage: nil, database: database, logger: logger)
            let version = try await runtime.run(migrate: false) { runtime in try await runtime.schemaVersion() }
            let latest = Schema.migrations.map(\.version).max() ?? 0
            findings.append(
                CheckFinding(
                    service: "postgres",
                    ok: version == latest,
                    message: version == latest
                        ? "schema at version \(version) (latest)"
                        : "schema at version \(version), latest is \(latest): run 'mediagw migrate'"
                )
            )
        } catch {
            findings.append(CheckFinding(service: "postgres", ok: false, message: Self.oneLine(error)))
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
        case let error as BlobStoreError: text = error.message
        case let error as MetadataStoreError: text = error.message
        case let error as ConfigurationError: text = error.message
        case let error as MediaError: text = error.message
        default: text = String(describing: error)
        }
        return text.replacingOccurrences(of: "\n", with: " ")
    }
}

extension MediaRuntime {
    /// The Ceph cluster's fsid.
    public var cephFSID: String { cluster?.fsid ?? "unknown" }
}
