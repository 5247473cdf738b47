import Foundation

/// A 128-bit identifier in UUID form, generated as UUIDv7 (time-ordered) so that new rows land at the
/// end of B-tree indexes instead of at random pages.
public protocol TimeOrderedIdentifier: Hashable, Sendable, Codable, CustomStringConvertible, LosslessStringConvertible {
    var uuid: UUID { get }
    init(uuid: UUID)
}

extension TimeOrderedIdentifier {
    /// A new identifier, UUIDv7: 48 bits of Unix milliseconds, then random bits.
    public static func generate(now: Date = Date()) -> Self {
        // the random bits of a version 4 UUID, then the time and the version over them
        var bytes = UUID.random().uuid
        let millis = UInt64(max(0, now.timeIntervalSince1970 * 1000))
        withUnsafeMutableBytes(of: &bytes) { bytes in
            for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: millis >> (8 * (5 - UInt64(i)))) }
            bytes[6] = (bytes[6] & 0x0F) | 0x70  // version 7 (the variant is already RFC 4122's)
        }
        return Self(uuid: UUID(uuid: bytes))
    }

    /// Parses the canonical lowercase or uppercase 36-character form; anything else is `nil`.
    public init?(_ description: String) {
        guard description.utf8.count == 36, let uuid = UUID(uuidString: description) else { return nil }
        self.init(uuid: uuid)
    }

    public var description: String { uuid.uuidString.lowercased() }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let string = try container.decode(String.self)
        guard let value = Self(string) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a UUID: \(string)")
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// Identifies one stored media item (an original and, later, its renditions).
public struct MediaID: TimeOrderedIdentifier {
    public let uuid: UUID
    public init(uuid: UUID) { self.uuid = uuid }
}

/// Identifies an upload set: the media a user attaches to one post draft, profile, community or message.
public struct UploadSetID: TimeOrderedIdentifier {
    public let uuid: UUID
    public init(uuid: UUID) { self.uuid = uuid }
}

extension UUID {
    /// A random (version 4) UUID from two draws of the system's generator. Foundation's `UUID()` opens and
    /// reads `/dev/urandom` on every call on Linux; the write path makes several per file.
    public static func random() -> UUID {
        var rng = SystemRandomNumberGenerator()
        var value: (UInt64, UInt64) = (rng.next(), rng.next())
        return withUnsafeMutableBytes(of: &value) { bytes in
            bytes[6] = (bytes[6] & 0x0F) | 0x40  // version 4
            bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
            return UUID(uuid: bytes.load(as: uuid_t.self))
        }
    }
}

extension Sequence<UInt8> {
    /// Lowercase hexadecimal, two digits per byte (content hashes, derived ids): without a format string
    /// per byte, which cost more than the hashing of small files.
    public var hexEncoded: String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
