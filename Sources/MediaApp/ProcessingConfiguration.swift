import Foundation
import MediaCore

/// Settings of media processing (workers, processors, renditions).
///
/// | variable | default | meaning |
/// |---|---|---|
/// | `MEDIAGW_WORKERS` | cores | jobs processed at once (one processor process each) |
/// | `MEDIAGW_WORKERS_IN_SERVE` | `true` | whether `serve` also runs workers (else run `mediagw worker`) |
/// | `MEDIAGW_JOB_TIMEOUT` | `5m` | wall time of one job; past it the processor is killed and the attempt fails |
/// | `MEDIAGW_JOB_LEASE` | `10m` | a claimed job whose worker died is taken again after this; must exceed the timeout |
/// | `MEDIAGW_JOB_ATTEMPTS` | `3` | attempts before a job is dead and its media failed (bad input fails at once) |
/// | `MEDIAGW_JOB_BACKOFF` | `10s` | wait before the first retry, doubling each time |
/// | `MEDIAGW_PROCESSOR_MEMORY` | `2GiB` | data memory limit of each processor process |
/// | `MEDIAGW_ISOLATE_PROCESSING` | `true` | process each job in a separate processor process, so that a crash fails the job, not the worker |
/// | `MEDIAGW_WORK_DIR` | `$TMPDIR/mediagw-work` | scratch space for transcoded files |
/// | `MEDIAGW_RENDITION_VERSION` | `v1` | part of rendition keys and URLs; change it when changing rendition settings |
/// | `MEDIAGW_PHOTO_WIDTHS` | `160,320,640,1280` | the rendition ladder |
/// | `MEDIAGW_PHOTO_MAX_PIXELS` | `50000000` | photos with more pixels are refused before decoding |
/// | `MEDIAGW_PHOTO_MAX_FRAMES` | `100` | animations with more frames are refused |
public struct ProcessingConfiguration: Sendable {
    public var workers: WorkerSettings
    public var inServe: Bool
    public var isolate: Bool
    public var processorMemory: Int64
    public var processing: ProcessingSettings

    public init(environment env: EnvironmentReader) throws(ConfigurationError) {
        let defaults = WorkerSettings()
        workers = WorkerSettings(
            concurrency: try env.int("MEDIAGW_WORKERS", default: defaults.concurrency),
            lease: try env.duration("MEDIAGW_JOB_LEASE", default: defaults.lease),
            maxAttempts: try env.int("MEDIAGW_JOB_ATTEMPTS", default: defaults.maxAttempts),
            backoff: try env.duration("MEDIAGW_JOB_BACKOFF", default: defaults.backoff))
        inServe = try env.bool("MEDIAGW_WORKERS_IN_SERVE", default: true)
        isolate = try env.bool("MEDIAGW_ISOLATE_PROCESSING", default: true)
        processorMemory = try env.bytes("MEDIAGW_PROCESSOR_MEMORY", default: 2 << 30)
        let widthsText = env.string("MEDIAGW_PHOTO_WIDTHS", default: "160,320,640,1280")
        let widths = widthsText.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !widths.isEmpty, widths.count == widthsText.split(separator: ",").count, widths.allSatisfy({ (16...8192).contains($0) }) else {
            throw ConfigurationError("MEDIAGW_PHOTO_WIDTHS must be a comma-separated list of widths between 16 and 8192")
        }
        let defaultPhoto = PhotoSettings()
        processing = ProcessingSettings(
            photo: PhotoSettings(
                widths: widths, maxPixels: try env.int("MEDIAGW_PHOTO_MAX_PIXELS", default: defaultPhoto.maxPixels),
                maxFrames: try env.int("MEDIAGW_PHOTO_MAX_FRAMES", default: defaultPhoto.maxFrames)),
            version: env.string("MEDIAGW_RENDITION_VERSION", default: "v1"),
            timeout: try env.duration("MEDIAGW_JOB_TIMEOUT", default: .seconds(300)),
            workDirectory: env.string("MEDIAGW_WORK_DIR", default: NSTemporaryDirectory() + "mediagw-work"))
        try validate()
    }

    public func validate() throws(ConfigurationError) {
        guard (1...256).contains(workers.concurrency) else { throw ConfigurationError("MEDIAGW_WORKERS must be between 1 and 256") }
        guard workers.lease > processing.timeout else { throw ConfigurationError("MEDIAGW_JOB_LEASE must exceed MEDIAGW_JOB_TIMEOUT") }
        guard processing.timeout >= .milliseconds(100) else { throw ConfigurationError("MEDIAGW_JOB_TIMEOUT must be at least 100ms") }
        guard (1...100).contains(workers.maxAttempts) else { throw ConfigurationError("MEDIAGW_JOB_ATTEMPTS must be between 1 and 100") }
        guard processorMemory >= 256 << 20 else { throw ConfigurationError("MEDIAGW_PROCESSOR_MEMORY must be at least 256MiB") }
        guard processing.version.range(of: "^[a-z0-9._-]{1,16}$", options: .regularExpression) != nil else {
            throw ConfigurationError("MEDIAGW_RENDITION_VERSION must be 1 to 16 characters: a-z 0-9 . _ -")
        }
        guard processing.photo.maxPixels >= 1, processing.photo.maxFrames >= 1 else {
            throw ConfigurationError("MEDIAGW_PHOTO_MAX_PIXELS and MEDIAGW_PHOTO_MAX_FRAMES must be positive")
        }
    }
}
