import Foundation

/// Why processing a media item failed. `permanent` failures (the input is bad) are not retried.
public struct ProcessingError: Error, Sendable, Codable, CustomStringConvertible {
    public enum Code: String, Sendable, Codable {
        /// The bytes are not a valid file of their type (corrupt, truncated, inconsistent).
        case invalidMedia = "invalid_media"
        /// Valid but refused: too many pixels or frames, zero dimensions, a codec or feature not handled.
        case unsupported
        case timedOut = "timed_out"
        /// The processor process died on this input.
        case crashed
        /// The object store or database failed: retry later.
        case storage
        case `internal`
    }

    public var code: Code
    public var message: String
    public var permanent: Bool

    public init(_ code: Code, _ message: String, permanent: Bool? = nil) {
        self.code = code
        self.message = message
        self.permanent = permanent ?? (code == .invalidMedia || code == .unsupported)
    }

    /// The reason recorded on a failed media item: `code: message`.
    public var reason: String { "\(code.rawValue): \(message)" }
    public var description: String { reason }
}

/// A value of a media item's metadata document.
public enum MetadataValue: Sendable, Hashable, Codable {
    case string(String)
    case integer(Int64)
    case number(Double)
    case bool(Bool)
    case numbers([Double])
    case strings([String])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Int64.self) {
            self = .integer(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([Double].self) {
            self = .numbers(value)
        } else {
            self = .strings(try container.decode([String].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .integer(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .numbers(let value): try container.encode(value)
        case .strings(let value): try container.encode(value)
        }
    }
}

/// Raw 8-bit RGB pixels (a decoded video frame).
public struct RGBFrame: Sendable, Hashable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// How photos (and poster frames, and cover art) are rendered.
public struct PhotoSettings: Sendable, Hashable, Codable {
    /// Rendition widths; a rendition is never wider than the source.
    public var widths: [Int]
    public var maxPixels: Int
    public var maxFrames: Int
    public var jpegQuality: Int
    public var webpQuality: Int

    public init(
        widths: [Int] = [160, 320, 640, 1280],
        maxPixels: Int = 50_000_000,
        maxFrames: Int = 100,
        jpegQuality: Int = 82,
        webpQuality: Int = 80
    ) {
        self.widths = widths.sorted()
        self.maxPixels = maxPixels
        self.maxFrames = maxFrames
        self.jpegQuality = jpegQuality
        self.webpQuality = webpQuality
    }
}

/// One encoded rendition, in memory (renditions are small).
public struct EncodedImage: Sendable, Hashable {
    /// Stable within its media item, e.g. `w320.webp`.
    public var name: String
    public var mime: String
    public var width: Int
    public var height: Int
    public var bytes: [UInt8]

    public init(name: String, mime: String, width: Int, height: Int, bytes: [UInt8]) {
        self.name = name
        self.mime = mime
        self.width = width
        self.height = height
        self.bytes = bytes
    }
}

/// What the image processor made of a photo.
public struct PhotoDerivation: Sendable, Hashable {
    /// Displayed size (orientation applied).
    public var width: Int
    public var height: Int
    /// The EXIF orientation of the source (1-8; 1 when none or invalid).
    public var orientation: Int
    public var frames: Int
    /// A BlurHash of the image, for a placeholder while the rendition loads.
    public var blurHash: String
    /// `#rrggbb`.
    public var dominantColor: String
    public var renditions: [EncodedImage]

    public init(width: Int, height: Int, orientation: Int, frames: Int, blurHash: String, dominantColor: String, renditions: [EncodedImage]) {
        self.width = width
        self.height = height
        self.orientation = orientation
        self.frames = frames
        self.blurHash = blurHash
        self.dominantColor = dominantColor
        self.renditions = renditions
    }
}

/// Photo renditions: decode once, derive the ladder. The work is CPU-bound: implementations run it off the
/// event loops and the cooperative pool.
public protocol ImageProcessor: Sendable {
    /// The ladder of an encoded photo (renditions named `<prefix>w<width>.webp|jpg`, plus `<prefix>anim.webp`
    /// for an animation). Refuses, before decoding, images over the pixel or frame caps or with zero sizes.
    func derive(encoded bytes: [UInt8], settings: PhotoSettings, prefix: String) async throws(ProcessingError) -> PhotoDerivation
    /// The ladder of raw pixels (a video's poster frame).
    func derive(frame: RGBFrame, settings: PhotoSettings, prefix: String) async throws(ProcessingError) -> PhotoDerivation
    /// Which optional loaders this build has (`heif`, `avif`, ...).
    var loaders: [String: Bool] { get }
}

/// How video and audio are transcoded.
public struct TranscodeSettings: Sendable, Hashable, Codable {
    public var maxVideoHeight: Int
    public var maxVideoWidth: Int
    public var videoMaxBitrate: Int
    public var crf: Int
    public var audioBitrate: Int
    public var audioSampleRate: Int
    public var posterAt: Duration
    public var waveformPoints: Int

    public init(
        maxVideoHeight: Int = 720,
        maxVideoWidth: Int = 1280,
        videoMaxBitrate: Int = 2_500_000,
        crf: Int = 23,
        audioBitrate: Int = 128_000,
        audioSampleRate: Int = 44_100,
        posterAt: Duration = .seconds(1),
        waveformPoints: Int = 100
    ) {
        self.maxVideoHeight = maxVideoHeight
        self.maxVideoWidth = maxVideoWidth
        self.videoMaxBitrate = videoMaxBitrate
        self.crf = crf
        self.audioBitrate = audioBitrate
        self.audioSampleRate = audioSampleRate
        self.posterAt = posterAt
        self.waveformPoints = waveformPoints
    }
}

/// What probing found.
public struct MediaProbe: Sendable, Hashable, Codable {
    public var container: String
    public var durationMilliseconds: Int64
    public var videoCodec: String?
    public var audioCodec: String?
    public var width: Int?
    public var height: Int?
    public var frameRate: Double?
    /// Clockwise degrees the video must be turned to display upright.
    public var rotation: Int
    public var sampleRate: Int?
    public var channels: Int?

    public init(
        container: String,
        durationMilliseconds: Int64,
        videoCodec: String? = nil,
        audioCodec: String? = nil,
        width: Int? = nil,
        height: Int? = nil,
        frameRate: Double? = nil,
        rotation: Int = 0,
        sampleRate: Int? = nil,
        channels: Int? = nil
    ) {
        self.container = container
        self.durationMilliseconds = durationMilliseconds
        self.videoCodec = videoCodec
        self.audioCodec = audioCodec
        self.width = width
        self.height = height
        self.frameRate = frameRate
        self.rotation = rotation
        self.sampleRate = sampleRate
        self.channels = channels
    }
}

/// A transcoded file on local disk, to be streamed into the store and then deleted.
public struct TranscodedFile: Sendable, Hashable {
    public var path: String
    public var mime: String
    public var width: Int?
    public var height: Int?

    public init(path: String, mime: String, width: Int? = nil, height: Int? = nil) {
        self.path = path
        self.mime = mime
        self.width = width
        self.height = height
    }
}

public struct VideoResult: Sendable {
    public var probe: MediaProbe
    public var output: TranscodedFile
    /// The frame at about `posterAt` (or the first frame of a shorter clip), upright.
    public var poster: RGBFrame?

    public init(probe: MediaProbe, output: TranscodedFile, poster: RGBFrame?) {
        self.probe = probe
        self.output = output
        self.poster = poster
    }
}

public struct AudioResult: Sendable {
    public var probe: MediaProbe
    public var output: TranscodedFile
    /// Peak levels (0...1) over equal slices of the whole duration.
    public var waveform: [Double]
    /// Embedded cover art, as it was embedded (JPEG or PNG bytes); dropped from the audio itself.
    public var coverArt: [UInt8]?

    public init(probe: MediaProbe, output: TranscodedFile, waveform: [Double], coverArt: [UInt8]?) {
        self.probe = probe
        self.output = output
        self.waveform = waveform
        self.coverArt = coverArt
    }
}

/// Probing and transcoding of video and audio. CPU-bound (implementations run it off the event loops and the
/// cooperative pool); reads its input from memory only.
public protocol Transcoder: Sendable {
    /// Probes, transcodes to H.264/AAC MP4 (fast start, at most the settings' size) and takes a poster frame.
    func transcodeVideo(
        _ input: [UInt8],
        settings: TranscodeSettings,
        workDirectory: String,
        deadline: Date
    ) async throws(ProcessingError)
        -> VideoResult
    /// Probes, transcodes to AAC-LC M4A (fast start), computes the waveform and extracts cover art.
    func transcodeAudio(
        _ input: [UInt8],
        settings: TranscodeSettings,
        workDirectory: String,
        deadline: Date
    ) async throws(ProcessingError)
        -> AudioResult
    /// Library versions, for `mediagw check`.
    var versions: [String: String] { get }
}
