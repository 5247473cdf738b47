import Foundation
import MediaCore
import Testing

@Suite struct IdentifierTests {
    @Test func generatedIdsAreVersion7WithTheRFCVariant() {
        let id = MediaID.generate()
        let bytes = withUnsafeBytes(of: id.uuid.uuid) { Array($0) }
        #expect(bytes[6] >> 4 == 7)
        #expect(bytes[8] >> 6 == 0b10)
    }

    @Test func generatedIdsCarryTheirCreationTimeInTheFirstSixBytes() {
        let now = Date(timeIntervalSince1970: 1_800_000_000.123)
        let id = UploadSetID.generate(now: now)
        let bytes = withUnsafeBytes(of: id.uuid.uuid) { Array($0) }
        let millis = bytes[0..<6].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(millis == 1_800_000_000_123)
    }

    @Test func idsGeneratedLaterSortAfterEarlierOnes() {
        let earlier = MediaID.generate(now: Date(timeIntervalSince1970: 1_000))
        let later = MediaID.generate(now: Date(timeIntervalSince1970: 1_001))
        #expect(earlier.description < later.description)
    }

    @Test func descriptionIsLowercaseAndRoundTrips() throws {
        let id = MediaID.generate()
        #expect(id.description == id.description.lowercased())
        #expect(MediaID(id.description) == id)
        #expect(MediaID(id.description.uppercased()) == id)
    }

    @Test(arguments: [
        "", "not-a-uuid", "0192f1d2-7c1a-7000-8000-00000000000", "{0192f1d2-7c1a-7000-8000-000000000000}", "0192f1d2-7c1a-7000-8000-000000000000 ",
    ])
    func malformedIdsAreRejected(_ text: String) {
        #expect(MediaID(text) == nil)
    }

    @Test func idsEncodeAsJSONStrings() throws {
        let id = UploadSetID.generate()
        let data = try JSONEncoder().encode([id])
        #expect(String(decoding: data, as: UTF8.self) == "[\"\(id)\"]")
        #expect(try JSONDecoder().decode([UploadSetID].self, from: data) == [id])
        #expect(throws: DecodingError.self) { try JSONDecoder().decode([UploadSetID].self, from: Data("[\"x\"]".utf8)) }
    }

    @Test func generatedIdsDifferInTheirRandomBitsWithinOneMillisecond() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let ids = (0..<1000).map { _ in MediaID.generate(now: now) }
        #expect(Set(ids).count == 1000)
        #expect(ids.allSatisfy { $0.description.hasPrefix(ids[0].description.prefix(13)) })
    }

    @Test func randomUUIDsAreVersion4WithTheRFCVariantAndDistinct() {
        let uuids = (0..<1000).map { _ in UUID.random() }
        #expect(Set(uuids).count == 1000)
        for uuid in uuids {
            let bytes = withUnsafeBytes(of: uuid.uuid) { Array($0) }
            #expect(bytes[6] >> 4 == 4)
            #expect(bytes[8] >> 6 == 0b10)
        }
        // the other 122 bits vary: every bit position outside the version and variant takes both values
        let words = uuids.map { withUnsafeBytes(of: $0.uuid) { ($0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt64.self)) } }
        let fixedHigh = words.reduce(~UInt64(0)) { $0 & ~($1.0 ^ words[0].0) }
        let fixedLow = words.reduce(~UInt64(0)) { $0 & ~($1.1 ^ words[0].1) }
        #expect(fixedHigh.nonzeroBitCount == 4)  // the version nibble
        #expect(fixedLow.nonzeroBitCount == 2)  // the variant
    }

    @Test func hexEncodingIsTwoLowercaseDigitsPerByte() {
        let bytes: [UInt8] = Array(0...255)
        #expect(bytes.hexEncoded == bytes.map { String(format: "%02x", $0) }.joined())
        #expect([UInt8]().hexEncoded.isEmpty)
        #expect([0xAB, 0x01].hexEncoded == "ab01")
    }
}
