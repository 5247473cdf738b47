import Crypto
import Foundation

/// What an upload token grants: uploads into one set, for one owner, until it expires.
public struct UploadGrant: Sendable, Hashable, Codable {
    public var uploadSetID: UploadSetID
    public var ownerID: String
    public var expiresAt: Date

    public init(uploadSetID: UploadSetID, ownerID: String, expiresAt: Date) {
        self.uploadSetID = uploadSetID
        self.ownerID = ownerID
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey {
        case uploadSetID = "set"
        case ownerID = "own"
        case expiresAt = "exp"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        uploadSetID = try container.decode(UploadSetID.self, forKey: .uploadSetID)
        ownerID = try container.decode(String.self, forKey: .ownerID)
        expiresAt = Date(timeIntervalSince1970: TimeInterval(try container.decode(Int64.self, forKey: .expiresAt)))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(uploadSetID, forKey: .uploadSetID)
        try container.encode(ownerID, forKey: .ownerID)
        try container.encode(Int64(expiresAt.timeIntervalSince1970), forKey: .expiresAt)
    }
}

/// A named HMAC key. The key id travels in every token so that keys can rotate: sign with the newest,
/// verify with any key still configured.
public struct SigningKey: Sendable {
    public var id: String
    private let secret: [UInt8]
    var key: SymmetricKey { SymmetricKey(data: secret) }

    public init(id: String, secret: [UInt8]) throws(ConfigurationError) {
        guard !id.isEmpty, id.utf8.count <= 32, id.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }) else {
            throw ConfigurationError("signing key id \(id.debugDescription) must be 1 to 32 letters, digits, - or _")
        }
        guard secret.count >= 32 else {
            throw ConfigurationError("signing key \(id) must have at least 32 bytes of secret")
        }
        self.id = id
        self.secret = secret
    }

    /// Parses `id:base64secret[,id:base64secret...]`; the first key signs.
    public static func parseList(_ text: String, variable: String) throws(ConfigurationError) -> [SigningKey] {
        var keys: [SigningKey] = []
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            let parts = item.split(separator: ":", maxSplits: 1).map(String.init)
            guard parts.count == 2, let secret = Data(base64Encoded: parts[1]) else {
                throw ConfigurationError("\(variable) must be a list of id:base64secret")
            }
            keys.append(try SigningKey(id: parts[0], secret: Array(secret)))
        }
        guard !keys.isEmpty else { throw ConfigurationError("\(variable) names no key") }
        guard Set(keys.map(\.id)).count == keys.count else { throw ConfigurationError("\(variable) repeats a key id") }
        return keys
    }
}

/// Signs and verifies upload tokens: `v1.<key id>.<base64url payload>.<base64url HMAC-SHA256>`.
public struct UploadTokenSigner: Sendable {
    public let keys: [SigningKey]

    /// - Parameter keys: the first key signs; all of them verify.
    public init(keys: [SigningKey]) {
        precondition(!keys.isEmpty, "at least one signing key")
        self.keys = keys
    }

    public func sign(_ grant: UploadGrant) -> String {
        let key = keys[0]
        let payload = Base64URL.encode(try! JSONEncoder().encode(grant))
        let signed = "v1.\(key.id).\(payload)"
        let mac = HMAC<SHA256>.authenticationCode(for: Data(signed.utf8), using: key.key)
        return "\(signed).\(Base64URL.encode(Data(mac)))"
    }

    /// The grant of a valid token. A token that is malformed, signed with an unknown key or tampered with is
    /// `unauthorized`; an expired one is `tokenExpired`. Signatures are compared in constant time.
    public func verify(_ token: String, now: Date = Date()) throws(MediaError) -> UploadGrant {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard token.utf8.count <= 2048, parts.count == 4, parts[0] == "v1",
            let key = keys.first(where: { $0.id == parts[1] }),
            let payload = Base64URL.decode(String(parts[2])),
            let mac = Base64URL.decode(String(parts[3]))
        else {
            throw MediaError(.unauthorized, "the upload token is not valid")
        }
        let signed = Data(token.utf8[..<token.utf8.index(before: parts[3].startIndex)])
        guard HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: signed, using: key.key),
            let grant = try? JSONDecoder().decode(UploadGrant.self, from: payload)
        else {
            throw MediaError(.unauthorized, "the upload token is not valid")
        }
        guard grant.expiresAt > now else { throw MediaError(.tokenExpired, "the upload token has expired") }
        return grant
    }
}

/// Checks the internal API's bearer tokens. Several may be configured (rotation); each comparison takes
/// the same time whatever the input, so a caller cannot learn a token byte by byte.
public struct ServiceTokens: Sendable {
    private let digests: [[UInt8]]

    public init(_ tokens: [String]) throws(ConfigurationError) {
        guard !tokens.isEmpty else { throw ConfigurationError("MEDIAGW_SERVICE_TOKENS names no token") }
        guard tokens.allSatisfy({ $0.utf8.count >= 16 }) else {
            throw ConfigurationError("every service token must be at least 16 characters")
        }
        digests = tokens.map { Array(SHA256.hash(data: Data($0.utf8))) }
    }

    /// Whether `presented` is one of the tokens. Hashing first makes both sides the same length; the
    /// digests are then compared without an early exit, and every configured token is always checked.
    public func accepts(_ presented: String) -> Bool {
        let candidate = Array(SHA256.hash(data: Data(presented.utf8)))
        var matched = false
        for digest in digests {
            var difference: UInt8 = 0
            for (a, b) in zip(digest, candidate) { difference |= a ^ b }
            matched = matched || difference == 0
        }
        return matched
    }
}

/// Base64 with the URL-safe alphabet and no padding.
public enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// The value of each byte of the alphabet; 0xFF for a byte outside it.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(value) }
        return table
    }()

    /// The URL-safe alphabet, without padding (RFC 4648 §5).
    public static func encode(_ data: Data) -> String {
        var output = [UInt8]()
        output.reserveCapacity((data.count * 4 + 2) / 3)
        var index = data.startIndex
        while index < data.endIndex {
            let count = min(3, data.endIndex - index)
            var group = UInt32(0)
            for offset in 0..<3 { group = group << 8 | UInt32(offset < count ? data[index + offset] : 0) }
            for position in 0...count { output.append(alphabet[Int(group >> UInt32(18 - 6 * position) & 0x3F)]) }
            index += count
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The bytes of unpadded URL-safe base64, or `nil` for anything else (padding, other characters, a
    /// length no encoding has).
    public static func decode(_ text: String) -> Data? {
        var output = Data()
        output.reserveCapacity(text.utf8.count * 3 / 4)
        var group = UInt32(0)
        var count = 0
        for byte in text.utf8 {
            let value = values[Int(byte)]
            guard value != 0xFF else { return nil }
            group = group << 6 | UInt32(value)
            count += 1
            if count == 4 {
                output.append(contentsOf: [UInt8(group >> 16 & 0xFF), UInt8(group >> 8 & 0xFF), UInt8(group & 0xFF)])
                group = 0
                count = 0
            }
        }
        switch count {
        case 0: break
        case 2: output.append(UInt8(group >> 4 & 0xFF))
        case 3: output.append(contentsOf: [UInt8(group >> 10 & 0xFF), UInt8(group >> 2 & 0xFF)])
        default: return nil
        }
        return output
    }
}
