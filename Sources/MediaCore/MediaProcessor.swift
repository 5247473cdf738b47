import Crypto
import Foundation
import Logging
import NIOCore

/// A media item to process, as the job queue hands it out.
public struct ProcessingJob: Sendable, Hashable, Codable {
    public var jobID: Int64
    public var mediaID: MediaID
    public var kind: MediaKind
    public var original: ObjectLocation
    public var size: Int64
    public var mime: String
    /// Attempts so far, this one included.
    public var attempts: Int
    /// The priority of the media's set.
    public var priority: ProcessingPriority
    /// The W3C `traceparent` of the request that stored the media, when it was traced: the job's span links to it.
    public var trace: String?

    public init(
        jobID: Int64,
        mediaID: MediaID,
        kind: MediaKind,
        original: ObjectLocation,
        size: Int64,
        mime: String,
        attempts: Int,
        priority: ProcessingPriority = .interactive,
        trace: String? = nil
    ) {
        self.trace = trace
        self.priority = priority
        self.jobID = jobID
        self.mediaID = mediaID
        self.kind = kind
        self.original = original
        self.size = size
        self.mime = mime
        self.attempts = attempts
    }
}

/// A stored rendition, before its row exists.
public struct RenditionRecord: Sendable, Hashable, Codable {
    public var name: String
    public var mime: String
    public var width: Int?
    public var height: Int?
    public var size: Int64
    public var sha256: String
    public var location: ObjectLocation

    public init(name: String, mime: String, width: Int?, height: Int?, size: Int64, sha256: String, location: ObjectLocation) {
        self.name = name
        self.mime = mime
        self.width = width
        self.height = height
        self.size = size
        self.sha256 = sha256
        self.location = location
    }
}

/// What processing produced: the renditions (already in the store, each still in the pending ledger) and
/// what was learnt about the original.
public struct ProcessingOutcome: Sendable, Hashable, Codable {
    public var width: Int?
    public var height: Int?
    public var durationMilliseconds: Int64?
    public var metadata: [String: MetadataValue]
    public var renditions: [RenditionRecord]
    /// The renditions' objects, staged: their rows are committed by the job runner.
    public var staged: [StagedObject]

    public init(
        width: Int?,
        height: Int?,
        durationMilliseconds: Int64?,
        metadata: [String: MetadataValue],
        renditions: [RenditionRecord],
        staged: [StagedObject]
    ) {
        self.width = width
        self.height = height
        self.durationMilliseconds = durationMilliseconds
        self.metadata = metadata
        self.renditions = renditions
        self.staged = staged
    }
}

/// Something that processes a job: in this process (``MediaProcessor``) or in an isolated one.
/// Every error is a ``ProcessingError``.
public protocol MediaProcessing: Sendable {
    func process(_ job: ProcessingJob) async throws -> ProcessingOutcome
}

/// Settings of processing.
public struct ProcessingSettings: Sendable, Hashable, Codable {
    public var photo: PhotoSettings
    public var transcode: TranscodeSettings
    /// Part of every rendition key (and URL): change it with the settings, and reprocessed media get new
    /// URLs instead of new content behind old ones.
    public var version: String
    /// Wall time one job may take.
    public var timeout: Duration
    /// Where transcoders write their output before it is streamed into the store.
    public var workDirectory: String

    public init(
        photo: PhotoSettings = PhotoSettings(),
        transcode: TranscodeSettings = TranscodeSettings(),
        version: String = "v1",
        timeout: Duration = .seconds(300),
        workDirectory: String = NSTemporaryDirectory() + "mediagw-work"
    ) {
        self.photo = photo
        self.transcode = transcode
        self.version = version
        self.timeout = timeout
        self.workDirectory = workDirectory
    }
}

/// Produces a media item's renditions, Ceph first: each rendition is written through the ``StagedWrite``
/// (pending ledger, then the object) into the derived pool under `<media id>/<version>/<name>`; the rows
/// come later, from the job runner. Reprocessing writes the same keys again: it is idempotent.
public struct MediaProcessor<Blobs: BlobStore, Ledger: PendingLedger, Images: ImageProcessor, Media: Transcoder>: MediaProcessing {
    public let images: Images
    public let transcoder: Media
    public let pools: StoragePools
    public let settings: ProcessingSettings
    let staging: StagedWrite<Blobs, Ledger>
    let clock: MediaClock
    let logger: Logger

    public init(
        blobs: Blobs,
        ledger: Ledger,
        images: Images,
        transcoder: Media,
        pools: StoragePools,
        settings: ProcessingSettings,
        clock: MediaClock = .system,
        logger: Logger
    ) {
        self.images = images
        self.transcoder = transcoder
        self.pools = pools
        self.settings = settings
        self.staging = StagedWrite(blobs: blobs, ledger: ledger, logger: logger)
        self.clock = clock
        self.logger = logger
    }

    public func process(_ job: ProcessingJob) async throws -> ProcessingOutcome {
        let deadline = Date().addingTimeInterval(settings.timeout.seconds)  // the libraries' own clock, not the injected one
        let original: [UInt8]
        do {
            original = Array(try await staging.blobs.read(job.original, range: nil).collect(upTo: Int(job.size) + 1).readableBytesView)
        } catch {
            throw ProcessingError(.storage, "reading the original: \(error)")
        }
        var written = Writer(processor: self, job: job)
        do {
            switch job.kind {
            case .photo: return try await photo(original, writer: &written)
            case .video: return try await video(original, deadline: deadline, writer: &written)
            case .audio: return try await audio(original, job: job, deadline: deadline, writer: &written)
            }
        } catch {
            await staging.discard(written.staged)
            throw error as? ProcessingError ?? ProcessingError(.internal, "\(error)")
        }
    }

    private func photo(_ original: [UInt8], writer: inout Writer) async throws -> ProcessingOutcome {
        let derivation = try await images.derive(encoded: original, settings: settings.photo, prefix: "")
        for rendition in derivation.renditions { try await writer.store(rendition) }
        return writer.outcome(
            width: derivation.width,
            height: derivation.height,
            duration: nil,
            metadata: [
                "orientation": .integer(Int64(derivation.orientation)), "frames": .integer(Int64(derivation.frames)),
                "animated": .bool(derivation.frames > 1), "blurhash": .string(derivation.blurHash),
                "dominant_color": .string(derivation.dominantColor),
            ]
        )
    }

    private func video(_ original: [UInt8], deadline: Date, writer: inout Writer) async throws -> ProcessingOutcome {
        try FileManager.default.createDirectory(atPath: settings.workDirectory, withIntermediateDirectories: true)
        let result = try await transcoder.transcodeVideo(
            original,
            settings: settings.transcode,
            workDirectory: settings.workDirectory,
            deadline: deadline
        )
        defer { try? FileManager.default.removeItem(atPath: result.output.path) }
        try await writer.store(file: result.output, name: "video.mp4")
        var metadata = Self.describe(result.probe)
        if let poster = result.poster {
            let derivation = try await images.derive(frame: poster, settings: settings.photo, prefix: "poster-")
            for rendition in derivation.renditions { try await writer.store(rendition) }
            metadata["poster"] = .string(derivation.renditions.last { $0.mime == "image/jpeg" }?.name ?? "")
            metadata["blurhash"] = .string(derivation.blurHash)
        }
        let upright = result.probe.rotation % 180 == 0
        return writer.outcome(
            width: upright ? result.probe.width : result.probe.height,
            height: upright ? result.probe.height : result.probe.width,
            duration: result.probe.durationMilliseconds,
            metadata: metadata
        )
    }

    private func audio(_ original: [UInt8], job: ProcessingJob, deadline: Date, writer: inout Writer) async throws -> ProcessingOutcome {
        try FileManager.default.createDirectory(atPath: settings.workDirectory, withIntermediateDirectories: true)
        let result = try await transcoder.transcodeAudio(
            original,
            settings: settings.transcode,
            workDirectory: settings.workDirectory,
            deadline: deadline
        )
        defer { try? FileManager.default.removeItem(atPath: result.output.path) }
        try await writer.store(file: result.output, name: "audio.m4a")
        var metadata = Self.describe(result.probe)
        metadata["waveform"] = .numbers(result.waveform)
        if let cover = result.coverArt {
            // a cover that does not render is dropped, not a reason to fail the audio
            do {
                let derivation = try await images.derive(encoded: cover, settings: settings.photo, prefix: "cover-")
                for rendition in derivation.renditions { try await writer.store(rendition) }
                metadata["cover"] = .string(derivation.renditions.last { $0.mime == "image/jpeg" }?.name ?? "")
            } catch let error as ProcessingError where error.permanent {
                logger.info("cover art dropped", metadata: ["media.id": "\(job.mediaID)", "error": "\(error)"])
            }
        }
        return writer.outcome(width: nil, height: nil, duration: result.probe.durationMilliseconds, metadata: metadata)
    }

    static func describe(_ probe: MediaProbe) -> [String: MetadataValue] {
        var metadata: [String: MetadataValue] = ["container": .string(probe.container), "duration_ms": .integer(probe.durationMilliseconds)]
        if let codec = probe.videoCodec { metadata["video_codec"] = .string(codec) }
        if let codec = probe.audioCodec { metadata["audio_codec"] = .string(codec) }
        if let rate = probe.frameRate { metadata["frame_rate"] = .number(rate) }
        if probe.videoCodec != nil { metadata["rotation"] = .integer(Int64(probe.rotation)) }
        if let rate = probe.sampleRate { metadata["sample_rate"] = .integer(Int64(rate)) }
        if let channels = probe.channels { metadata["channels"] = .integer(Int64(channels)) }
        return metadata
    }

    /// The key of a rendition.
    public static func renditionKey(media: MediaID, version: String, name: String) -> String {
        "\(media)/\(version)/\(name)"
    }

    /// Writes renditions through the staged write and remembers them, for the outcome or for a discard.
    struct Writer {
        let processor: MediaProcessor
        let job: ProcessingJob
        var records: [RenditionRecord] = []
        var staged: [StagedObject] = []

        init(processor: MediaProcessor, job: ProcessingJob) {
            self.processor = processor
            self.job = job
        }

        func location(_ name: String) -> ObjectLocation {
            ObjectLocation(
                pool: processor.pools.derived,
                key: MediaProcessor.renditionKey(media: job.mediaID, version: processor.settings.version, name: name)
            )
        }

        var entry: PendingEntry { PendingEntry(mediaID: job.mediaID, uploadSetID: nil, registeredAt: processor.clock.now()) }

        mutating func store(_ image: EncodedImage) async throws {
            let location = location(image.name)
            let digest = SHA256.hash(data: image.bytes).hexEncoded
            do {
                staged.append(try await processor.staging.write(location, bytes: ByteBuffer(bytes: image.bytes), mode: .replace, entry: entry))
            } catch {
                throw ProcessingError(.storage, "writing \(image.name): \(error)")
            }
            records.append(
                RenditionRecord(
                    name: image.name,
                    mime: image.mime,
                    width: image.width,
                    height: image.height,
                    size: Int64(image.bytes.count),
                    sha256: digest,
                    location: location
                )
            )
        }

        mutating func store(file: TranscodedFile, name: String) async throws {
            let location = location(name)
            let chunks = FileChunks(path: file.path)
            let object: StagedObject
            do {
                object = try await processor.staging.write(location, from: chunks, mode: .replace, entry: entry)
            } catch {
                throw ProcessingError(.storage, "writing \(name): \(error)")
            }
            staged.append(object)
            records.append(
                RenditionRecord(
                    name: name,
                    mime: file.mime,
                    width: file.width,
                    height: file.height,
                    size: object.size,
                    sha256: chunks.digest(),
                    location: location
                )
            )
        }

        func outcome(width: Int?, height: Int?, duration: Int64?, metadata: [String: MetadataValue]) -> ProcessingOutcome {
            ProcessingOutcome(width: width, height: height, durationMilliseconds: duration, metadata: metadata, renditions: records, staged: staged)
        }
    }
}

/// The bytes of a local file in 1 MiB chunks, hashed as they are read.
final class FileChunks: AsyncSequence, @unchecked Sendable {
    typealias Element = ByteBuffer
    let path: String
    private var hasher = SHA256()

    init(path: String) { self.path = path }

    func digest() -> String { hasher.finalize().hexEncoded }

    struct AsyncIterator: AsyncIteratorProtocol {
        let owner: FileChunks
        let handle: FileHandle?

        mutating func next() async throws -> ByteBuffer? {
            guard let handle, let data = try handle.read(upToCount: 1 << 20), !data.isEmpty else {
                try? handle?.close()
                return nil
            }
            owner.hasher.update(data: data)
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(owner: self, handle: FileHandle(forReadingAtPath: path)) }
}
