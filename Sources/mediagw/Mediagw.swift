import ArgumentParser
import Foundation
import Logging
import MediaApp
import MediaCore

@main
struct Mediagw: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mediagw",
        abstract: "Media pipeline and object-store gateway: photos, audio and video on Ceph and PostgreSQL.",
        discussion: "Settings come from MEDIAGW_* environment variables (see README); the options below override them.",
        subcommands: [Serve.self, Worker.self, Check.self, Migrate.self, Reconcile.self, Ingest.self, ProcessChild.self]
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

    /// The environment with the options applied on top.
    var environment: EnvironmentReader {
        var values = ProcessInfo.processInfo.environment
        values["MEDIAGW_CEPH_CONF"] = cephConf ?? values["MEDIAGW_CEPH_CONF"]
        values["MEDIAGW_CEPH_CLIENT"] = cephClient ?? values["MEDIAGW_CEPH_CLIENT"]
        values["MEDIAGW_CEPH_KEYRING"] = cephKeyring ?? values["MEDIAGW_CEPH_KEYRING"]
        values["MEDIAGW_DATABASE_URL"] = databaseURL ?? values["MEDIAGW_DATABASE_URL"]
        values["MEDIAGW_LOG_LEVEL"] = logLevel ?? values["MEDIAGW_LOG_LEVEL"]
        return EnvironmentReader(values)
    }

    /// Loads and validates the configuration and sets up logging; a bad setting ends the process with
    /// one line and exit code 2.
    func load(defaultLogLevel: Logger.Level = .info) throws -> (GatewayConfiguration, Logger) {
        do {
            let configuration = try GatewayConfiguration(environment: environment)
            let level = environment.string("MEDIAGW_LOG_LEVEL") == nil ? defaultLogLevel : configuration.logLevel
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            return (configuration, Logger(label: "mediagw"))
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
    /// Prints `failure` as `mediagw: error: ...` and exits with its code.
    static func exit(with failure: Failure) -> Never {
        FileHandle.standardError.write(Data("mediagw: error: \(failure.description)\n".utf8))
        Foundation.exit(failure.exitCode)
    }
}
