import FFmpegMedia
import Foundation
import Logging
import MediaCore
import RadosStore
import VipsImaging

#if canImport(Glibc)
import Glibc
#endif

/// The child side of the process pool: reads jobs as JSON lines on standard input, processes each in
/// this process, and answers with a JSON line on standard output. Anything else goes to standard error.
public enum ProcessorChildCommand {
    public static func run(configuration: GatewayConfiguration, processing: ProcessingConfiguration, logger: Logger) async -> Int32 {
        limitMemory(processing.processorMemory)
        let cluster: RadosCluster
        let processor: MediaProcessor<RadosObjectStore, VipsImageProcessor, FFmpegTranscoder>
        do {
            cluster = try await RadosCluster.connect(configuration.rados, pools: configuration.pools.all, logger: logger)
            processor = MediaProcessor(
                objects: RadosObjectStore(cluster: cluster), images: try VipsImageProcessor(), transcoder: FFmpegTranscoder(),
                pools: configuration.pools, settings: processing.processing, logger: logger)
        } catch {
            logger.error("processor could not start", metadata: ["error": "\(error)"])
            return 1
        }
        while let line = readLine(strippingNewline: true) {
            let response: ChildResponse
            do {
                let request = try JSONDecoder().decode(ChildRequest.self, from: Data(line.utf8))
                response = ChildResponse(outcome: try await processor.process(request.job), error: nil)
            } catch let error as ProcessingError {
                response = ChildResponse(outcome: nil, error: error)
            } catch {
                response = ChildResponse(outcome: nil, error: ProcessingError(.internal, "\(error)"))
            }
            var data = (try? JSONEncoder().encode(response)) ?? Data(#"{"error":{"code":"internal","message":"unencodable answer","permanent":false}}"#.utf8)
            data.append(0x0A)
            FileHandle.standardOutput.write(data)
        }
        await cluster.shutdown()
        return 0
    }

    /// Caps the process's data segment (heap and anonymous mappings): an allocation bomb fails an allocation
    /// here instead of exhausting the machine.
    static func limitMemory(_ bytes: Int64) {
        var limit = rlimit(rlim_cur: rlim_t(bytes), rlim_max: rlim_t(bytes))
        setrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &limit)
    }
}
