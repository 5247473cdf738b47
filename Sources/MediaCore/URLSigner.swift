import Crypto
import Foundation

/// The signature parameters of a signed origin URL: `?exp=<unix seconds>&kid=<key id>&sig=<base64url>`.
public struct URLSignature: Sendable, Hashable {
    public var expires: String
    public var keyID: String
    public var signature: String

    public init(expires: String, keyID: String, signature: String) {
        self.expires = expires
        self.keyID = keyID
        self.signature = signature
    }

    /// The query string that carries the signature.
    public var query: String { "exp=\(expires)&kid=\(keyID)&sig=\(signature)" }
}

/// Signs and verifies origin URLs of private media: HMAC-SHA256 over the key id, the expiry and the path,
/// with a key id so that keys rotate (the first key signs, every configured key verifies).
public struct URLSigner: Sendable {
    public let keys: [SigningKey]

    public init(keys: [SigningKey]) {
        precondition(!keys.isEmpty, "at least one URL signing key")
        self.keys = keys
    }

    public func sign(path: String, expiresAt: Date) -> URLSignature {
        let key = keys[0]
        let expires = String(Int64(expiresAt.timeIntervalSince1970.rounded(.down)))
        return URLSignature(expires: expires, keyID: key.id, signature: Self.mac(key, expires: expires, path: path))
    }

    /// The expiry of a valid signature. Unknown keys and signatures that do not match are `forbidden`;
    /// a signature past its expiry is `urlExpired`. Signatures are compared in constant time.
    public func verify(_ signature: URLSignature, path: String, now: Date = Date()) throws(MediaError) -> Date {
        guard signature.expires.utf8.count <= 12, let seconds = Int64(signature.expires), seconds > 0,
            let key = keys.first(where: { $0.id == signature.keyID }),
            let presented = Base64URL.decode(signature.signature)
        else {
            throw MediaError(.forbidden, "the URL signature is not valid")
        }
        let material = Data(Self.material(keyID: key.id, expires: signature.expires, path: path).utf8)
        guard HMAC<SHA256>.isValidAuthenticationCode(presented, authenticating: material, using: key.key) else {
            throw MediaError(.forbidden, "the URL signature is not valid")
        }
        let expiresAt = Date(timeIntervalSince1970: TimeInterval(seconds))
        guard expiresAt > now else { throw MediaError(.urlExpired, "the signed URL has expired") }
        return expiresAt
    }

    static func material(keyID: String, expires: String, path: String) -> String { "v1\n\(keyID)\n\(expires)\n\(path)" }

    static func mac(_ key: SigningKey, expires: String, path: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data(material(keyID: key.id, expires: expires, path: path).utf8), using: key.key)
        return Base64URL.encode(Data(code))
    }
}
