import Crypto
import Foundation
import NIOCore
import OpenSSLHashing
import Testing

@testable import MediaCore

/// The SHA-256 whose state a resumable upload saves between its pieces: resumed anywhere, by another
/// "gateway", it gives the digest of the whole file, and a state of another length is refused.
@Suite struct ResumableHashTests {
    let hashing = OpenSSLSHA256()

    func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return UInt8(truncatingIfNeeded: state)
        }
    }

    func reference(_ bytes: [UInt8]) -> String { SHA256.hash(data: Data(bytes)).hexEncoded }

    @Test(arguments: [0, 1, 63, 64, 65, 1000, 128 * 1024 + 17])
    func aStateSavedAndResumedAtEveryCutGivesTheDigestOfTheWhole(length: Int) {
        let file = bytes(length, seed: UInt64(length))
        let cuts = Set([0, 1, 55, 63, 64, 65, 127, 128, length / 3, length / 2, length - 1, length].filter { $0 >= 0 && $0 <= length }).sorted()
        #expect(!cuts.isEmpty)
        for cut in cuts {
            var first = hashing.start()
            file[..<cut].withUnsafeBytes { first.update($0) }
            let saved = first.saved()
            guard var resumed = hashing.resume(saved, at: Int64(cut)) else {
                Issue.record("the state after \(cut) of \(length) bytes is taken up again")
                continue
            }
            #expect(resumed.byteCount == Int64(cut))
            file[cut...].withUnsafeBytes { resumed.update($0) }
            #expect(resumed.hexDigest() == reference(file), "cut at \(cut) of \(length)")
        }
    }

    @Test func aStateIsRefusedAtAnotherOffsetOrDamaged() {
        var state = hashing.start()
        bytes(1000, seed: 9).withUnsafeBytes { state.update($0) }
        let saved = state.saved()
        #expect(hashing.resume(saved, at: 1000) != nil)
        #expect(hashing.resume(saved, at: 999) == nil, "another length")
        #expect(hashing.resume(saved, at: 1064) == nil, "another length, the same partial block")
        #expect(hashing.resume(Array(saved.dropLast()), at: 1000) == nil, "cut short")
        var otherVersion = saved
        otherVersion[0] = 2
        #expect(hashing.resume(otherVersion, at: 1000) == nil, "a layout this version does not know")
        var wrongPartial = saved
        wrongPartial[1 + 32 + 8] ^= 1  // the partial block's length
        #expect(hashing.resume(wrongPartial, at: 1000) == nil, "a partial block that disagrees with the count")
        #expect(hashing.resume([], at: 0) == nil)
    }

    @Test func theTrackerGivesTheHashAtAnyOffsetWithinOrAtTheEndOfTheLastPiece() {
        let file = bytes(10_000, seed: 3)
        let tracker = UploadHashTracker(hashing.start())
        tracker.hand(ByteBuffer(bytes: file[..<4000]))
        tracker.hand(ByteBuffer(bytes: file[4000..<9000]))
        for offset in [4000, 4001, 6543, 8999, 9000] {
            #expect(tracker.hash(at: Int64(offset))?.hexDigest() == reference(Array(file[..<offset])), "at \(offset)")
        }
        #expect(tracker.hash(at: 0)?.hexDigest() == reference([]), "where the append started")
        #expect(tracker.hash(at: 3999) == nil, "before the last piece")
        #expect(tracker.hash(at: 9001) == nil, "past what was handed over")
        tracker.hand(ByteBuffer(bytes: file[9000...]))
        #expect(tracker.hash(at: 10_000)?.hexDigest() == reference(file))
        #expect(tracker.byteCount == 10_000)
    }
}
