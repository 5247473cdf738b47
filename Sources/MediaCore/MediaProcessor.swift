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

    public init(jobID: Int64, mediaID: MediaID, kind: MediaKind, original: ObjectLocation, size: Int64, mime: String, attempts: Int) {
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

/// What processing produced: the renditions (already in the store, each still in the pending index) and
/// what was learnt about the original.
public struct ProcessingOutcome: Sendable, Hashable, Codable {
    public var width: Int?
    public var height: Int?
    public var durationMilliseconds: Int64?
    public var metadata: [String: MetadataValue]
    public var renditions: [RenditionRecord]
    public var tickets: [PendingTicket]

    public init(width: Int?, height: Int?, durationMilliseconds: Int64?, metadata: [String: MetadataValue], renditions: [RenditionRecord], tickets: [PendingTicket]) {
        self.width = width
        self.height = height
        self.durationMilliseconds = durationMilliseconds
        self.metadata = metadata
        self.renditions = renditions
        self.tickets = tickets
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

    public init(photo: PhotoSettings = PhotoSettings(), transcode: TranscodeSettings = TranscodeSettings(), version: String = "v1",
                timeout: Duration = .seconds(300), workDirectory: String = NSTemporaryDirectory() + "mediagw-work") {
        self.photo = photo
        self.transcode = transcode
        self.version = version
        self.timeout = timeout
        self.workDirectory = workDirectory
    }
}

/// Produces a media item's renditions, Ceph first: each rendition is registered in the pending index, then
/// written to the derived pool under `<media id>/<version>/<name>`; the rows come later, from the job runner.
/// Reprocessing writes the same keys again: it is idempotent.
public struct MediaProcessor<Objects: ObjectStore, Images: ImageProcessor, Media: Transcoder>: MediaProcessing {
    public let objects: Objects
    public let images: Images
    public let transcoder: Media
    public let pools: StoragePools
    public let settings: ProcessingSettings
    let pending: PendingIndex<Objects>
    let logger: Logger

    public init(objects: Objects, images: Images, transcoder: Media, pools: StoragePools, settings: ProcessingSettings, logger: Logger) {
        self.objects = objects
        self.images = images
        self.transcoder = transcoder
        self.pools = pools
        self.settings = settings
        self.pending = PendingIndex(objects: objects)
        self.logger = logger
    }

    public func process(_ job: ProcessingJob) async throws -> ProcessingOutcome {
        let deadline = Date().addingTimeInterval(settings.timeout.seconds)
        let original: [UInt8]
        do {
            original = Array(try await objects.read(job.original, range: nil).collect(upTo: Int(job.size) + 1).readableBytesView)
        } catch {
            throw ProcessingError(.storage, "reading the original: \(error)")
        }
        var written = Writer(processor: self, job: job)
        do {
            let outcome: ProcessingOutcome
            switch job.kind {
            case .photo: outcome = try await photo(original, job: job, writer: &written)
            case .video: outcome = try await video(original, job: job, deadline: deadline, writer: &written)
            case .audio: outcome = try await audio(original, job: job, deadline: deadline, writer: &written)
            }
            return outcome
        } catch {
            await written.discard()
            throw error as? ProcessingError ?? ProcessingError(.internal, "\(error)")
        }
    }

    private func photo(_ original: [UInt8], job: ProcessingJob, writer: inout Writer) async throws -> ProcessingOutcome {
        let images = self.images, photo = settings.photo
        let derivation = try await blocking { () throws(ProcessingError) in try images.derive(encoded: original, settings: photo, prefix: "") }
        for rendition in derivation.renditions { try await writer.store(rendition) }
        return writer.outcome(
            width: derivation.width, height: derivation.height, duration: nil,
            metadata: [
                "orientation": .integer(Int64(derivation.orientation)), "frames": .integer(Int64(derivation.frames)),
                "animated": .bool(derivation.frames > 1), "blurhash": .string(derivation.blurHash),
                "dominant_color": .string(derivation.dominantColor),
            ])
    }

    private func video(_ original: [UInt8], job: ProcessingJob, deadline: Date, writer: inout Writer) async throws -> ProcessingOutcome {
        let transcoder = self.transcoder, images = self.images, settings = self.settings
        try FileManager.default.createDirectory(atPath: settings.workDirectory, withIntermediateDirectories: true)
        let result = try await blocking { () throws(ProcessingError) in try transcoder.transcodeVideo(original, settings: settings.transcode, workDirectory: settings.workDirectory, deadline: deadline) }
        defer { try? FileManager.default.removeItem(atPath: result.output.path) }
        try await writer.store(file: result.output, name: "video.mp4")
        var metadata = Self.describe(result.probe)
        if let poster = result.poster {
            let derivation = try await blocking { () throws(ProcessingError) in try images.derive(frame: poster, settings: settings.photo, prefix: "poster-") }
            for rendition in derivation.renditions { try await writer.store(rendition) }
            metadata["poster"] = .string(derivation.renditions.last { $0.mime == "image/jpeg" }?.name ?? "")
            metadata["blurhash"] = .string(derivation.blurHash)
        }
        let upright = result.probe.rotation % 180 == 0
        return writer.outcome(
            width: upright ? result.probe.width : result.probe.height, height: upright ? result.probe.height : result.probe.width,
            duration: result.probe.durationMilliseconds, metadata: metadata)
    }

    private func audio(_ original: [UInt8], job: ProcessingJob, deadline: Date, writer: inout Writer) async throws -> ProcessingOutcome {
        let transcoder = self.transcoder, images = self.images, settings = self.settings
        try FileManager.default.createDirectory(atPath: settings.workDirectory, withIntermediateDirectories: true)
        let result = try await blocking { () throws(ProcessingError) in try transcoder.transcodeAudio(original, settings: settings.transcode, workDirectory: settings.workDirectory, deadline: deadline) }
        defer { try? FileManager.default.removeItem(atPath: result.output.path) }
        try await writer.store(file: result.output, name: "audio.m4a")
        var metadata = Self.describe(result.probe)
        metadata["waveform"] = .numbers(result.waveform)
        if let cover = result.coverArt {
            // a cover that does not render is dropped, not a reason to fail the audio
            do {
                let derivation = try await blocking { () throws(ProcessingError) in try images.derive(encoded: cover, settings: settings.photo, prefix: "cover-") }
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

    /// Writes renditions, Ceph first, and remembers them so that a failure can take them back.
    struct Writer {
        let processor: MediaProcessor
        let job: ProcessingJob
        var records: [RenditionRecord] = []
        var tickets: [PendingTicket] = []

        init(processor: MediaProcessor, job: ProcessingJob) {
            self.processor = processor
            self.job = job
        }

        func location(_ name: String) -> ObjectLocation {
            ObjectLocation(pool: processor.pools.derived, key: MediaProcessor.renditionKey(media: job.mediaID, version: processor.settings.version, name: name))
        }

        mutating func store(_ image: EncodedImage) async throws {
            let location = location(image.name)
            try await register(location)
            let digest = SHA256.hash(data: image.bytes).map { String(format: "%02x", $0) }.joined()
            do {
                try await processor.objects.writeFull(location, bytes: ByteBuffer(bytes: image.bytes), mode: .replace)
            } catch {
                throw ProcessingError(.storage, "writing \(image.name): \(error)")
            }
            records.append(RenditionRecord(
                name: image.name, mime: image.mime, width: image.width, height: image.height, size: Int64(image.bytes.count),
                sha256: digest, location: location))
        }

        mutating func store(file: TranscodedFile, name: String) async throws {
            let location = location(name)
            try await register(location)
            let chunks = FileChunks(path: file.path)
            do {
                let size = try await processor.objects.write(location, from: chunks, mode: .replace)
                records.append(RenditionRecord(
                    name: name, mime: file.mime, width: file.width, height: file.height, size: size, sha256: chunks.digest(), location: location))
            } catch {
                throw ProcessingError(.storage, "writing \(name): \(error)")
            }
        }

        private mutating func register(_ location: ObjectLocation) async throws {
            do {
                tickets.append(try await processor.pending.register(location, PendingEntry(mediaID: job.mediaID, uploadSetID: nil, registeredAt: Date())))
            } catch {
                throw ProcessingError(.storage, "registering \(location.key): \(error)")
            }
        }

        func outcome(width: Int?, height: Int?, duration: Int64?, metadata: [String: MetadataValue]) -> ProcessingOutcome {
            ProcessingOutcome(width: width, height: height, durationMilliseconds: duration, metadata: metadata, renditions: records, tickets: tickets)
        }

        /// Removes what was written (best effort; the reconciler finishes the job otherwise).
        func discard() async {
            for ticket in tickets {
                do {
                    do { try await processor.objects.remove(ticket.location) } catch let error as ObjectStoreError where error.code == .notFound {}
                    try await processor.pending.complete(ticket)
                } catch {
                    processor.logger.warning("could not remove a rendition; the reconciler will", metadata: ["object": "\(ticket.location)"])
                }
            }
        }
    }
}

/// The bytes of a local file in 1 MiB chunks, hashed as they are read.
final class FileChunks: AsyncSequence, @unchecked Sendable {
    typealias Element = ByteBuffer
    let path: String
    private var hasher = SHA256()

    init(path: String) { self.path = path }

    func digest() -> String { hasher.finalize().map { String(format: "%02x", $0) }.joined() }

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

/// Runs CPU-bound, blocking work (libvips, FFmpeg) on a thread of its own, off the cooperative pool and
/// the event loops.
func blocking<T: Sendable>(_ work: @escaping @Sendable () throws(ProcessingError) -> T) async throws(ProcessingError) -> T {
    let result: Result<T, ProcessingError> = await withCheckedContinuation { continuation in
        let thread = Thread {
            do throws(ProcessingError) {
                continuation.resume(returning: .success(try work()))
            } catch {
                continuation.resume(returning: .failure(error))
            }
        }
        thread.stackSize = 8 << 20
        thread.start()
    }
    return try result.get()
}
