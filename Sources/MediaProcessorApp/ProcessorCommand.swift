import FFmpegMedia
import Foundation
@_exported import MediaApp
import ProcessorPool
import VipsImaging

#if canImport(Glibc)
import Glibc
#endif

/// What a processor process reads: Ceph (it writes renditions) and the processing settings.
public struct ProcessorConfiguration: Sendable {
    public var storage: StorageConfiguration
    public var processing: ProcessingConfiguration

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        storage = try StorageConfiguration(environment: env)
        processing = try ProcessingConfiguration(environment: env)
    }
}

/// The processor program (`mediagw-processor`): the only program that loads libvips and FFmpeg. Workers
/// start one per worker and hand it jobs over a pipe; it writes the renditions Ceph-first and answers with
/// what it produced.
public enum ProcessorCommand {
    /// `mediagw-processor child`: serves jobs on standard input until it closes. Returns the exit status.
    public static func child(_ configuration: ProcessorConfiguration, logger: Logger) async -> Int32 {
        limitMemory(configuration.processing.processorMemory)
        let images: VipsImageProcessor
        let runtime: MediaRuntime
        do {
            images = try VipsImageProcessor()
            runtime = try await MediaRuntime.connect(storage: configuration.storage, database: nil, logger: logger)
        } catch {
            logger.error("processor could not start", metadata: ["error": "\(error)"])
            return 1
        }
        do {
            try await runtime.run { runtime in
                let processor = MediaProcessor(
                    blobs: runtime.blobs,
                    ledger: runtime.pendingLedger,
                    images: images,
                    transcoder: FFmpegTranscoder(),
                    pools: runtime.storagePools,
                    settings: configuration.processing.processing,
                    logger: logger
                )
                await ProcessorChildLoop.serve(processor)
            }
            return 0
        } catch {
            logger.error("processor failed", metadata: ["error": "\(error)"])
            return 1
        }
    }

    /// `mediagw-processor check`: the media libraries this build links, and which optional loaders and
    /// encoders they have, as findings.
    public static func check() -> [CheckFinding] {
        var findings: [CheckFinding] = []
        do {
            let images = try VipsImageProcessor()
            let loaders = images.loaders.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value ? "yes" : "no")" }.joined(separator: ", ")
            findings.append(
                CheckFinding(
                    service: "media",
                    ok: images.loaders["jpeg"] == true && images.loaders["webp-save"] == true,
                    message: "libvips \(VipsImageProcessor.version): \(loaders)"
                )
            )
        } catch {
            findings.append(CheckFinding(service: "media", ok: false, message: "libvips: \(error)"))
        }
        let versions = FFmpegTranscoder().versions
        findings.append(
            CheckFinding(
                service: "media",
                ok: versions["libx264"] == "yes" && versions["aac"] == "yes",
                message: "FFmpeg \(versions["ffmpeg"] ?? "?"): libx264 encoder \(versions["libx264"] ?? "no"), aac encoder \(versions["aac"] ?? "no")"
            )
        )
        return findings
    }

    /// Caps the process's data segment (heap and anonymous mappings): an allocation bomb fails an allocation
    /// here instead of exhausting the machine.
    static func limitMemory(_ bytes: Int64) {
        var limit = rlimit(rlim_cur: rlim_t(bytes), rlim_max: rlim_t(bytes))
        setrlimit(__rlimit_resource_t(RLIMIT_DATA.rawValue), &limit)
    }
}
