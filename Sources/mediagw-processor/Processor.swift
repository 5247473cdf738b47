import ArgumentParser
import Foundation
import MediaProcessorApp

@main
struct Processor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mediagw-processor",
        abstract: "The media processor: libvips and FFmpeg, run by the workers of mediagw, one process per worker.",
        subcommands: [Child.self, Check.self]
    )
}

/// `mediagw-processor child`: the processor process a worker starts; jobs on stdin, outcomes on stdout.
struct Child: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve jobs (JSON lines) on standard input; started by the workers.")

    func run() async throws {
        let environment = EnvironmentReader()
        do {
            let logging = try LoggingConfiguration(environment: environment, default: .warning)
            let configuration = try ProcessorConfiguration(environment: environment)
            let logger = MediaLogging.bootstrap(logging)
            Foundation.exit(await ProcessorCommand.child(configuration, logger: logger))
        } catch {
            FileHandle.standardError.write(Data("mediagw-processor: error: configuration: \(error.message)\n".utf8))
            Foundation.exit(2)
        }
    }
}

/// `mediagw-processor check`: what the media libraries of this build can do, one JSON finding per line.
struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Report the media libraries (libvips loaders, FFmpeg encoders) as JSON lines.")

    func run() throws {
        let findings = ProcessorCommand.check()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for finding in findings {
            print(String(decoding: try encoder.encode(finding), as: UTF8.self))
        }
        if findings.contains(where: { !$0.ok }) { throw ExitCode(1) }
    }
}
