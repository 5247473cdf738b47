import Foundation
import MediaCore
import Testing

@Suite struct UploadTokenTests {
    let current = try! SigningKey(id: "k2", secret: Array(repeating: 7, count: 32))
    let previous = try! SigningKey(id: "k1", secret: Array(repeating: 9, count: 32))
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func grant(expiresIn seconds: TimeInterval = 3600) -> UploadGrant {
        UploadGrant(uploadSetID: .generate(), ownerID: "user-1", expiresAt: now.addingTimeInterval(seconds))
    }

    @Test func aSignedTokenVerifiesToItsGrant() throws {
        let signer = UploadTokenSigner(keys: [current, previous])
        let grant = grant()
        let token = signer.sign(grant)
        #expect(token.hasPrefix("v1.k2."))
        #expect(try signer.verify(token, now: now) == grant)
    }

    @Test func tokensOfAPreviousKeyStillVerifyAfterRotation() throws {
        let old = UploadTokenSigner(keys: [previous]).sign(grant())
        #expect(throws: Never.self) { try UploadTokenSigner(keys: [current, previous]).verify(old, now: now) }
        #expect { try UploadTokenSigner(keys: [current]).verify(old, now: now) } throws: { ($0 as? MediaError)?.code == .unauthorized }
    }

    @Test func anExpiredTokenIsRefusedAsExpired() {
        let token = UploadTokenSigner(keys: [current]).sign(grant(expiresIn: -1))
        #expect { try UploadTokenSigner(keys: [current]).verify(token, now: now) } throws: { ($0 as? MediaError)?.code == .tokenExpired }
    }

    @Test func anyChangeToTheTokenIsRefused() {
        let signer = UploadTokenSigner(keys: [current])
        let token = signer.sign(grant())
        var parts = token.split(separator: ".").map(String.init)
        let otherPayload = Base64URL.encode(try! JSONEncoder().encode(grant(expiresIn: 999_999)))
        let otherVersion: String = "v2." + parts[1...].joined(separator: ".")
        let otherKey: String = [parts[0], "k1", parts[2], parts[3]].joined(separator: ".")
        let otherGrant: String = [parts[0], parts[1], otherPayload, parts[3]].joined(separator: ".")
        // a character inside the signature: the last one also carries two padding bits, which decoders ignore
        let inside = token.index(token.endIndex, offsetBy: -5)
        let flippedSignature: String = token.replacingCharacters(in: inside...inside, with: token[inside] == "A" ? "B" : "A")
        let unsigned: String = parts.prefix(3).joined(separator: ".")
        let tampered: [String] = [
            otherVersion, otherKey, otherGrant, flippedSignature, unsigned, "", "garbage", String(repeating: "a.", count: 3000),
        ]
        for candidate in tampered {
            #expect { try signer.verify(candidate, now: now) } throws: { ($0 as? MediaError)?.code == .unauthorized }
        }
        parts[2] = "!!!"
        #expect { try signer.verify(parts.joined(separator: "."), now: now) } throws: { ($0 as? MediaError)?.code == .unauthorized }
    }

    @Test func base64URLMatchesFoundationsBase64WithTheURLAlphabetAndNoPadding() {
        var generator = SystemRandomNumberGenerator()
        var lengths = 0
        for length in 0..<70 {
            let data = Data((0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) })
            let standard = data.base64EncodedString()
            let expected = String(
                standard.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 }.filter { $0 != "=" }
            )
            #expect(Base64URL.encode(data) == expected)
            #expect(Base64URL.decode(expected) == data)
            lengths += 1
        }
        #expect(lengths == 70)
        for refused in ["A", "AAAAA", "AA==", "ab+c", "ab/c", "ab c", "é123", "AAA\u{0}"] {
            #expect(Base64URL.decode(refused) == nil, "\(refused)")
        }
        #expect(Base64URL.decode("") == Data())
    }

    @Test func keyListsAreParsedAndValidated() throws {
        let secret = Data(repeating: 1, count: 32).base64EncodedString()
        let keys = try SigningKey.parseList("a:\(secret), b:\(secret)", variable: "X")
        #expect(keys.map(\.id) == ["a", "b"])
        #expect(throws: ConfigurationError.self) {
            try SigningKey.parseList("a:\(Data(repeating: 1, count: 8).base64EncodedString())", variable: "X")
        }
        #expect(throws: ConfigurationError.self) { try SigningKey.parseList("a:\(secret),a:\(secret)", variable: "X") }
        #expect(throws: ConfigurationError.self) { try SigningKey.parseList("nocolon", variable: "X") }
    }

    @Test func serviceTokensAcceptExactlyTheConfiguredOnes() throws {
        let tokens = try ServiceTokens(["first-token-0123456789", "second-token-0123456789"])
        #expect(tokens.accepts("first-token-0123456789"))
        #expect(tokens.accepts("second-token-0123456789"))
        #expect(!tokens.accepts("first-token-012345678"))
        #expect(!tokens.accepts(""))
        #expect(throws: ConfigurationError.self) { try ServiceTokens(["short"]) }
        #expect(throws: ConfigurationError.self) { try ServiceTokens([]) }
    }
}
