/// What the first bytes of a file say it is.
public struct SniffedType: Sendable, Hashable, CustomStringConvertible {
    public var kind: MediaKind
    /// The MIME type recorded for the original.
    public var mime: String

    public init(kind: MediaKind, mime: String) {
        self.kind = kind
        self.mime = mime
    }

    public var description: String { "\(kind) \(mime)" }
}

/// Decides the type of an upload from its magic bytes alone; the client's file name and Content-Type never
/// count. Accepted: JPEG, PNG, GIF, WebP, HEIC/AVIF (photos); MP3, AAC (ADTS) and M4A, Ogg Vorbis/Opus,
/// FLAC, WAV (audio); MP4/MOV/3GP and WebM/Matroska (video). Everything else is refused.
public enum MediaSniffer {
    /// How many leading bytes ``sniff(_:)`` looks at; fewer are fine when the file is shorter.
    public static let prefixLength = 64

    public static func sniff(_ bytes: some Collection<UInt8>) -> SniffedType? {
        let b = Array(bytes.prefix(prefixLength))
        func at(_ offset: Int, _ magic: [UInt8]) -> Bool {
            b.count >= offset + magic.count && Array(b[offset..<offset + magic.count]) == magic
        }
        func ascii(_ offset: Int, _ text: String) -> Bool { at(offset, Array(text.utf8)) }

        // photos
        if at(0, [0xFF, 0xD8, 0xFF]) { return SniffedType(kind: .photo, mime: "image/jpeg") }
        if at(0, [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return SniffedType(kind: .photo, mime: "image/png") }
        if ascii(0, "GIF87a") || ascii(0, "GIF89a") { return SniffedType(kind: .photo, mime: "image/gif") }
        if ascii(0, "RIFF") && ascii(8, "WEBP") { return SniffedType(kind: .photo, mime: "image/webp") }

        // ISO base media (ftyp box): HEIF/AVIF photos, M4A audio, MP4/MOV/3GP video
        if ascii(4, "ftyp"), let type = isoBaseMedia(b) { return type }

        // audio
        if ascii(0, "ID3") { return SniffedType(kind: .audio, mime: "audio/mpeg") }
        if ascii(0, "fLaC") { return SniffedType(kind: .audio, mime: "audio/flac") }
        if ascii(0, "RIFF") && ascii(8, "WAVE") { return SniffedType(kind: .audio, mime: "audio/wav") }
        if ascii(0, "OggS") {
            // the first page carries the codec's identification header
            if contains(b, "OpusHead") || contains(b, "\u{01}vorbis") { return SniffedType(kind: .audio, mime: "audio/ogg") }
            return nil
        }
        if b.count >= 4, b[0] == 0xFF, b[1] & 0xF6 == 0xF0, (b[2] >> 2) & 0x0F < 13 {
            // ADTS: 12-bit sync, layer 00, a valid sampling-frequency index
            return SniffedType(kind: .audio, mime: "audio/aac")
        }
        if b.count >= 4, b[0] == 0xFF, b[1] & 0xE0 == 0xE0, (b[1] >> 1) & 0x03 != 0, (b[1] >> 3) & 0x03 != 1,
            b[2] >> 4 != 0x0F, b[2] >> 4 != 0, (b[2] >> 2) & 0x03 != 3
        {
            // an MPEG audio frame header without an ID3 tag: sync, a layer, a real bitrate and sample rate
            return SniffedType(kind: .audio, mime: "audio/mpeg")
        }

        // video: EBML (Matroska/WebM)
        if at(0, [0x1A, 0x45, 0xDF, 0xA3]) {
            return contains(b, "webm") ? SniffedType(kind: .video, mime: "video/webm") : SniffedType(kind: .video, mime: "video/x-matroska")
        }
        return nil
    }

    private static func isoBaseMedia(_ b: [UInt8]) -> SniffedType? {
        guard b.count >= 12 else { return nil }
        let boxSize = Int(b[0]) << 24 | Int(b[1]) << 16 | Int(b[2]) << 8 | Int(b[3])
        var brands = [String(decoding: b[8..<12], as: UTF8.self)]
        // compatible brands follow the minor version, up to the end of the box (or of what we have)
        var offset = 16
        while offset + 4 <= min(b.count, max(boxSize, 16)) {
            brands.append(String(decoding: b[offset..<offset + 4], as: UTF8.self))
            offset += 4
        }
        let major = brands[0]
        if ["avif", "avis"].contains(major) { return SniffedType(kind: .photo, mime: "image/avif") }
        if ["heic", "heix", "heim", "heis", "hevc", "hevx"].contains(major) { return SniffedType(kind: .photo, mime: "image/heic") }
        if ["mif1", "msf1"].contains(major) {
            if brands.contains("avif") || brands.contains("avis") { return SniffedType(kind: .photo, mime: "image/avif") }
            return SniffedType(kind: .photo, mime: "image/heic")
        }
        if ["M4A ", "M4B ", "M4P "].contains(major) { return SniffedType(kind: .audio, mime: "audio/mp4") }
        if major == "qt  " { return SniffedType(kind: .video, mime: "video/quicktime") }
        if major.hasPrefix("3gp") { return SniffedType(kind: .video, mime: "video/3gpp") }
        if major.hasPrefix("3g2") { return SniffedType(kind: .video, mime: "video/3gpp2") }
        let mp4 = ["isom", "iso2", "iso3", "iso4", "iso5", "iso6", "mp41", "mp42", "avc1", "dash", "M4V ", "MSNV", "f4v ", "mmp4"]
        if mp4.contains(major) { return SniffedType(kind: .video, mime: "video/mp4") }
        return nil
    }

    private static func contains(_ bytes: [UInt8], _ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard bytes.count >= needle.count else { return false }
        for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0] {
            if Array(bytes[start..<start + needle.count]) == needle { return true }
        }
        return false
    }
}
