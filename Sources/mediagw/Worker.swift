import ArgumentParser
import Foundation
import MediaApp
import MediaCore

/// `mediagw worker`: process media (renditions, transcodes) until SIGTERM, without serving HTTP.
struct Worker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run processing workers only: photo renditions, video and audio transcodes (stops cleanly on SIGTERM)."
    )

    @OptionGroup var options: ConnectionOptions
    @Option(name: .shortAndLong, help: "Jobs at once (MEDIAGW_WORKERS; default: cores).")
    var jobs: Int?

    func run() async throws {
        do {
            let (configuration, logger) = try options.load()
            var environment = options.environment.values
            environment["MEDIAGW_WORKERS"] = jobs.map(String.init) ?? environment["MEDIAGW_WORKERS"]
            let processing: ProcessingConfiguration
            do {
                processing = try ProcessingConfiguration(environment: EnvironmentReader(environment))
            } catch {
                throw Failure("configuration: \(error.message)", exitCode: 2)
            }
            do {
                let group = try await WorkerCommand.build(configuration: configuration, processing: processing, environment: environment, logger: logger)
                logger.notice("mediagw worker running", metadata: ["workers": "\(processing.workers.concurrency)"])
                try await group.run()
            } catch {
                throw Failure(SystemCheck.oneLine(error))
            }
        } catch let failure as Failure {
            Self.exit(with: failure)
        }
    }
}

/// `mediagw process-child`: the processor process the workers start; not for direct use.
struct ProcessChild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "process-child", abstract: "Internal: one processor process of the worker pool.", shouldDisplay: false)

    @OptionGroup var options: ConnectionOptions

    func run() async throws {
        do {
            let (configuration, logger) = try options.load(defaultLogLevel: .warning)
            let processing: ProcessingConfiguration
            do {
                processing = try ProcessingConfiguration(environment: options.environment)
            } catch {
                throw Failure("configuration: \(error.message)", exitCode: 2)
            }
            let status = await ProcessorChildCommand.run(configuration: configuration, processing: processing, logger: logger)
            Foundation.exit(status)
        } catch let failure as Failure {
            Self.exit(with: failure)
        }
    }
}
