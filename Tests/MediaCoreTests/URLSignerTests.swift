import Foundation
import MediaCore
import Testing

@Suite struct URLSignerTests {
    let current = try! SigningKey(id: "u2", secret: Array(repeating: 3, count: 32))
    let previous = try! SigningKey(id: "u1", secret: Array(repeating: 4, count: 32))
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let path = "/m/01a1ff6f-1620-7606-b28b-afa676acccfe/v1/w320.webp"

    @Test func aSignedPathVerifiesUntilItsExpiry() throws {
        let signer = URLSigner(keys: [current])
        let signature = signer.sign(path: path, expiresAt: now.addingTimeInterval(600.7))
        #expect(signature.keyID == "u2")
        #expect(signature.expires == "1800000600", "whole seconds")
        #expect(signature.query == "exp=1800000600&kid=u2&sig=\(signature.signature)")
        #expect(try signer.verify(signature, path: path, now: now) == Date(timeIntervalSince1970: 1_800_000_600))
        #expect(throws: MediaError.self) { try signer.verify(signature, path: path, now: now.addingTimeInterval(600)) }
        do {
            _ = try signer.verify(signature, path: path, now: now.addingTimeInterval(601))
            Issue.record("an expired signature verified")
        } catch {
            #expect(error.code == .urlExpired)
        }
    }

    @Test func tamperingWithAnyPartIsForbidden() throws {
        let signer = URLSigner(keys: [current])
        let good = signer.sign(path: path, expiresAt: now.addingTimeInterval(600))
        var later = good
        later.expires = "1900000000"
        var otherKey = good
        otherKey.keyID = "u9"
        var flipped = good
        flipped.signature = String(good.signature.reversed())
        var notBase64 = good
        notBase64.signature = "%%%"
        var negative = good
        negative.expires = "-5"
        for (signature, signedPath) in [
            (later, path), (otherKey, path), (flipped, path), (notBase64, path), (negative, path),
            (good, path.replacingOccurrences(of: "w320", with: "w1280")), (good, path + "x"),
        ] {
            do {
                _ = try signer.verify(signature, path: signedPath, now: now)
                Issue.record("\(signature) verified for \(signedPath)")
            } catch {
                #expect(error.code == .forbidden)
            }
        }
    }

    @Test func keysRotateTheNewestSignsAndOlderOnesStillVerify() throws {
        let old = URLSigner(keys: [previous]).sign(path: path, expiresAt: now.addingTimeInterval(60))
        let rotated = URLSigner(keys: [current, previous])
        #expect(rotated.sign(path: path, expiresAt: now).keyID == "u2")
        #expect(throws: Never.self) { try rotated.verify(old, path: path, now: now) }
        #expect(throws: MediaError.self) { try URLSigner(keys: [current]).verify(old, path: path, now: now) }
    }
}

@Suite struct OriginTargetTests {
    @Test func originalsAreNamedOriginalWithOneExtension() {
        #expect(OriginTarget.parse(file: "original.jpg") == .original(fileExtension: "jpg"))
        for file in [
            "original", "original.", "original.tar.gz", "copy.jpg", "original.j/g", "original.%2e", "original." + String(repeating: "a", count: 80),
        ] {
            #expect(OriginTarget.parse(file: file) == nil, "\(file)")
        }
    }

    @Test func renditionsWithAFormatAreExactAndWithoutOneAreNegotiated() {
        #expect(OriginTarget.parse(version: "v1", name: "w320.webp") == .rendition(version: "v1", name: "w320.webp"))
        #expect(OriginTarget.parse(version: "v1", name: "w320") == .negotiated(version: "v1", base: "w320"))
        for (version, name) in [("v1", ".webp"), ("v1", "w320."), ("", "w320"), ("v1", ""), ("..", "w320"), ("v1", "a b"), ("v 1", "w320")] {
            #expect(OriginTarget.parse(version: version, name: name) == nil, "\(version)/\(name)")
        }
    }
}
