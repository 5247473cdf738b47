import ArgumentParser
import Foundation
import MediaApp

@main
struct Mediagw: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mediagw",
        abstract: "Media pipeline and object-store gateway: photos, audio and video on Ceph and PostgreSQL.",
        discussion: "Settings come from MEDIAGW_* environment variables (see README); the options below override them.",
        subcommands: [Serve.self, Worker.self, Check.self, Migrate.self, Reconcile.self, Ingest.self, Plans.self, Correlate.self]
    )
}

/// Options shared by every subcommand: they override the environment variables of the same meaning.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .long, help: "ceph.conf path (MEDIAGW_CEPH_CONF)")
    var cephConf: String?
    @Option(name: .long, help: "cephx client id, without 'client.' (MEDIAGW_CEPH_CLIENT)")
    var cephClient: String?
    @Option(name: .long, help: "keyring path (MEDIAGW_CEPH_KEYRING)")
    var cephKeyring: String?
    @Option(name: .long, help: "postgres://user:password@host:port/database (MEDIAGW_DATABASE_URL)")
    var databaseURL: String?
    @Option(name: .long, help: "trace, debug, info, notice, warning, error (MEDIAGW_LOG_LEVEL)")
    var logLevel: String?

    /// The environment with the options (and `extra`) applied on top.
    func environment(_ extra: [String: String?] = [:]) -> EnvironmentReader {
        var values = ProcessInfo.processInfo.environment
        let overrides: [String: String?] = [
            "MEDIAGW_CEPH_CONF": cephConf, "MEDIAGW_CEPH_CLIENT": cephClient, "MEDIAGW_CEPH_KEYRING": cephKeyring,
            "MEDIAGW_DATABASE_URL": databaseURL, "MEDIAGW_LOG_LEVEL": logLevel,
        ].merging(extra) { $1 }
        for case let (name, value?) in overrides { values[name] = value }
        return EnvironmentReader(values)
    }

    /// Reads one command's configuration and sets up logging; a bad setting ends the process with one line
    /// and exit code 2.
    func load<C>(
        _ extra: [String: String?] = [:],
        defaultLogLevel: Logger.Level = .info,
        _ read: (EnvironmentReader) throws(ConfigurationError) -> C
    ) throws -> (C, Logger, EnvironmentReader) {
        let environment = environment(extra)
        do {
            let logging = try LoggingConfiguration(environment: environment, default: defaultLogLevel)
            let tracing = try TracingConfiguration(environment: environment, serviceName: "mediagw")
            let configuration = try read(environment)
            return (configuration, try MediaLogging.bootstrap(logging, tracing: tracing), environment)
        } catch {
            throw Failure("configuration: \(error.message)", exitCode: 2)
        }
    }
}

/// Ends the command with one line on stderr and an exit code, never a stack trace.
struct Failure: Error, CustomStringConvertible {
    var description: String
    var exitCode: Int32

    init(_ description: String, exitCode: Int32 = 1) {
        self.description = description
        self.exitCode = exitCode
    }
}

extension AsyncParsableCommand {
    /// Runs `body`; a ``Failure`` is printed as `mediagw: error: ...` and ends the process with its code.
    func failing(_ body: () async throws -> Void) async {
        do {
            try await body()
        } catch let failure as Failure {
            Self.exit(with: failure)
        } catch let failure as IngestCommand.Failure {
            Self.exit(with: Failure(failure.description, exitCode: failure.exitCode))
        } catch {
            Self.exit(with: Failure(SystemCheck.oneLine(error)))
        }
    }

    /// Prints `failure` as `mediagw: error: ...` and exits with its code.
    static func exit(with failure: Failure) -> Never {
        FileHandle.standardError.write(Data("mediagw: error: \(failure.description)\n".utf8))
        Foundation.exit(failure.exitCode)
    }
}
