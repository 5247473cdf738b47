import ArgumentParser
import Foundation
import MediaApp

/// `mediagw serve`: run the HTTP API until SIGTERM/SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the gateway: internal API, public upload route, CDN origin, processing workers, health, metrics (stops cleanly on SIGTERM)."
    )

    @OptionGroup var options: ConnectionOptions
    @Option(help: "address to listen on (MEDIAGW_HOST)")
    var host: String?
    @Option(help: "port to listen on (MEDIAGW_PORT)")
    var port: Int?

    func run() async throws {
        await failing {
            let (configuration, logger, environment) = try options.load(["MEDIAGW_HOST": host, "MEDIAGW_PORT": port.map(String.init)]) {
                env throws(ConfigurationError) in try ServeConfiguration(environment: env)
            }
            let gateway = try await GatewayServer.build(configuration, environment: environment.values, logger: logger) { port in
                logger.notice("mediagw listening", metadata: ["http.host": "\(configuration.http.host)", "http.port": "\(port)"])
            }
            try await gateway.serviceGroup.run()
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
        await failing {
            let (configuration, logger, _) = try options.load(["MEDIAGW_RECONCILE_GRACE": grace], defaultLogLevel: .warning) {
                env throws(ConfigurationError) in try ReconcileConfiguration(environment: env)
            }
            print(try await ReconcileCommand.run(configuration, logger: logger))
        }
    }
}

/// A subcommand that reads PostgreSQL only and prints what it found, one line each.
protocol DatabaseCommand: AsyncParsableCommand {
    var options: ConnectionOptions { get }
    static func lines(_ configuration: MigrateConfiguration, logger: Logger) async throws -> [String]
}

extension DatabaseCommand {
    func run() async throws {
        await failing {
            let (configuration, logger, _) = try options.load(defaultLogLevel: .warning) {
                env throws(ConfigurationError) in try MigrateConfiguration(environment: env)
            }
            for line in try await Self.lines(configuration, logger: logger) { print(line) }
        }
    }
}

/// `mediagw migrate`: apply the schema migrations that are not applied yet.
struct Migrate: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending PostgreSQL schema migrations (idempotent; the server also runs them at start)."
    )

    @OptionGroup var options: ConnectionOptions

    static func lines(_ configuration: MigrateConfiguration, logger: Logger) async throws -> [String] {
        try await MigrateCommand.run(configuration, logger: logger)
    }
}

/// `mediagw plans`: how PostgreSQL runs the hot statements on this database.
struct Plans: DatabaseCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the plans PostgreSQL chooses for the hot statements (EXPLAIN ANALYZE in rolled-back transactions)."
    )

    @OptionGroup var options: ConnectionOptions

    static func lines(_ configuration: MigrateConfiguration, logger: Logger) async throws -> [String] {
        try await PlansCommand.run(configuration, logger: logger)
    }
}

/// `mediagw check`: connect to Ceph and PostgreSQL and print what was found.
struct Check: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Connect to Ceph and PostgreSQL, ask the processor about the media libraries, and print what was found; exit 1 if anything is wrong."
    )

    @OptionGroup var options: ConnectionOptions

    func run() async throws {
        await failing {
            let (configuration, logger, _) = try options.load(defaultLogLevel: .warning) {
                env throws(ConfigurationError) in try CheckConfiguration(environment: env)
            }
            let findings = await SystemCheck(configuration: configuration, logger: logger).run()
            for finding in findings { print(finding.line) }
            if findings.contains(where: { !$0.ok }) {
                throw Failure("\(findings.filter { !$0.ok }.count) check(s) failed")
            }
        }
    }
}

/// `mediagw worker`: process media (renditions, transcodes) until SIGTERM, without serving HTTP.
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run processing workers only: photo renditions, video and audio transcodes (stops cleanly on SIGTERM)."
    )

    @OptionGroup var options: ConnectionOptions
    @Option(name: .shortAndLong, help: "Jobs at once (MEDIAGW_WORKERS; default: cores).")
    var jobs: Int?

    func run() async throws {
        await failing {
            let (configuration, logger, environment) = try options.load(["MEDIAGW_WORKERS": jobs.map(String.init)]) {
                env throws(ConfigurationError) in try WorkerConfiguration(environment: env)
            }
            let group = try await WorkerCommand.build(configuration, environment: environment.values, logger: logger)
            logger.notice("mediagw worker running", metadata: ["workers": "\(configuration.processing.workers.concurrency)"])
            try await group.run()
        }
    }
}

/// `mediagw correlate <id>`: the connected story of any id.
struct Correlate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print everything related to an id in time order: the request, trace, set, media items, jobs and events it is linked to.",
        discussion: """
            The id may be a request id (X-Request-Id), a trace id, an upload set, a media item, a job number or an \
            event id, bare or as kind:id (request:, trace:, set:, media:, job:, event:). Exit 1 when nothing is linked to it.
            """
    )

    @OptionGroup var options: ConnectionOptions
    @Argument(help: "the id to start from")
    var id: String
    @Flag(help: "print one JSON object")
    var json = false
    @Option(help: "how many links away to walk")
    var depth = 8
    @Option(help: "at most this many ids")
    var limit = 500

    func run() async throws {
        await failing {
            guard (1...32).contains(depth), (1...100_000).contains(limit) else {
                throw Failure("--depth must be 1 to 32 and --limit 1 to 100000", exitCode: 2)
            }
            let (configuration, logger, _) = try options.load(defaultLogLevel: .warning) {
                env throws(ConfigurationError) in try MigrateConfiguration(environment: env)
            }
            let lines = try await CorrelateCommand.run(configuration, id: id, json: json, depth: depth, limit: limit, logger: logger)
            guard !lines.isEmpty else { throw Failure("nothing is linked to \(id)") }
            for line in lines { print(line) }
        }
    }
}
