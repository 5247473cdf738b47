import ArgumentParser
import Foundation
import MediaApp
import MediaCore

/// `mediagw serve`: run the HTTP API until SIGTERM/SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway: internal API, public upload route, health, metrics (stops cleanly on SIGTERM)."
    )

    @OptionGroup var options: ConnectionOptions
    @Option(help: "address to listen on (MEDIAGW_HOST)")
    var host: String?
    @Option(help: "port to listen on (MEDIAGW_PORT)")
    var port: Int?

    func run() async throws {
        do {
            let (configuration, logger) = try options.load()
            var environment = options.environment.values
            environment["MEDIAGW_HOST"] = host ?? environment["MEDIAGW_HOST"]
            environment["MEDIAGW_PORT"] = port.map(String.init) ?? environment["MEDIAGW_PORT"]
            let server: ServerConfiguration
            let processing: ProcessingConfiguration
            do {
                server = try ServerConfiguration(environment: EnvironmentReader(environment))
                processing = try ProcessingConfiguration(environment: EnvironmentReader(environment))
            } catch {
                throw Failure("configuration: \(error.message)", exitCode: 2)
            }
            let gateway: GatewayServer
            do {
                gateway = try await GatewayServer.build(
                    configuration: configuration, server: server, processing: processing, environment: environment, logger: logger
                ) { port in
                    logger.notice("mediagw listening", metadata: ["http.host": "\(server.http.host)", "http.port": "\(port)"])
                }
            } catch {
                throw Failure(SystemCheck.oneLine(error))
            }
            do {
                try await gateway.serviceGroup.run()
            } catch {
                throw Failure(SystemCheck.oneLine(error))
            }
        } catch let failure as Failure {
            Self.exit(with: failure)
        }
    }
}

/// `mediagw reconcile`: one reconciler pass.
struct Reconcile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Expire old drafts, purge deleted media, and remove objects that a crash left without a row (one pass)."
    )

    @OptionGroup var options: ConnectionOptions
    @Option(help: "Leave pending objects younger than this alone, e.g. 1h, 10m, 0s (default: MEDIAGW_RECONCILE_GRACE or 1h).")
    var grace: String?

    func run() async throws {
        do {
            let (configuration, logger) = try options.load(defaultLogLevel: .warning)
            let graceValue: Duration
            do {
                var environment = options.environment.values
                environment["MEDIAGW_RECONCILE_GRACE"] = grace ?? environment["MEDIAGW_RECONCILE_GRACE"]
                graceValue = try EnvironmentReader(environment).duration("MEDIAGW_RECONCILE_GRACE", default: .seconds(3600))
            } catch {
                throw Failure("configuration: \(error.message)", exitCode: 2)
            }
            do {
                let report = try await ReconcileCommand.run(configuration: configuration, grace: graceValue, logger: logger)
                print(report)
            } catch {
                throw Failure(SystemCheck.oneLine(error))
            }
        } catch let failure as Failure {
            Self.exit(with: failure)
        }
    }
}
