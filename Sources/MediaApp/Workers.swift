import FFmpegMedia
import Foundation
import Logging
import MediaCore
import RadosStore
import ServiceLifecycle
import VipsImaging

/// Any ``MediaProcessing``: the process pool or an in-process processor.
public struct AnyMediaProcessing: MediaProcessing {
    private let body: @Sendable (ProcessingJob) async throws -> ProcessingOutcome

    public init(_ processing: some MediaProcessing) {
        body = { try await processing.process($0) }
    }

    public func process(_ job: ProcessingJob) async throws -> ProcessingOutcome { try await body(job) }
}

/// Builds the processing side of a gateway.
public enum Processing {
    /// The executable that runs `process-child`: this program unless configured.
    static func executable(_ environment: [String: String]) -> String {
        environment["MEDIAGW_PROCESSOR_EXECUTABLE"] ?? (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// The processor: isolated processes (default) or this process.
    static func make(
        configuration: GatewayConfiguration, processing: ProcessingConfiguration, objects: RadosObjectStore,
        environment: [String: String], logger: Logger
    ) throws -> (AnyMediaProcessing, ProcessPool?) {
        if processing.isolate {
            let pool = ProcessPool(
                executable: executable(environment), environment: environment, size: processing.workers.concurrency,
                timeout: processing.processing.timeout, logger: logger)
            return (AnyMediaProcessing(pool), pool)
        }
        let processor = MediaProcessor(
            objects: objects, images: try VipsImageProcessor(), transcoder: FFmpegTranscoder(), pools: configuration.pools,
            settings: processing.processing, logger: logger)
        return (AnyMediaProcessing(processor), nil)
    }
}

/// The processing workers as a service: on graceful shutdown they stop claiming, finish the jobs in hand,
/// then stop their processors.
struct WorkerService<Metadata: MetadataStore, Objects: ObjectStore>: Service {
    let runner: JobRunner<Metadata, Objects, AnyMediaProcessing>
    let pool: ProcessPool?

    func run() async throws {
        await runner.run(stop: { Task.isShuttingDownGracefully })
        await pool?.shutdown()
    }
}
