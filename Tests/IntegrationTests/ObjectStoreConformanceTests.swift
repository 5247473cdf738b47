import Foundation
import MediaCore
import NIOCore
import Testing

/// One conformance suite for the ``ObjectStore`` port, run against RADOS on the real stack.
@Suite struct ObjectStoreConformanceTests {
    let store: any ObjectStore
    let pool: String

    init() async throws {
        store = try await TestStack.objectStore()
        pool = try TestStack.pools().photo
    }

    func location(_ label: String = #function) -> ObjectLocation {
        ObjectLocation(pool: pool, key: uniqueKey(label))
    }

    @Test func smallObjectWrittenInOneOperationReadsBack() async throws {
        let object = location()
        try await store.writeFull(object, bytes: ByteBuffer(string: "hello, rados"), mode: .createExclusive)
        #expect(try await store.read(object, range: nil).collect(upTo: 1 << 20) == ByteBuffer(string: "hello, rados"))
        try await store.remove(object)
    }

    @Test func tenMegabytesStreamedInPiecesReadBackByteIdentical() async throws {
        let object = location()
        let content = patternBytes(count: 10 << 20, seed: 10)
        let pieces = stride(from: 0, to: content.count, by: 61_440).map { ByteBuffer(bytes: content[$0..<min($0 + 61_440, content.count)]) }
        let written = try await store.write(object, from: AsyncStream { c in pieces.forEach { c.yield($0) }; c.finish() }, mode: .createExclusive)
        #expect(written == Int64(content.count))
        #expect(try await store.stat(object).size == Int64(content.count))
        var position = 0
        var largestChunk = 0
        for try await chunk in store.read(object, range: nil) {
            largestChunk = max(largestChunk, chunk.readableBytes)
            #expect(Array(chunk.readableBytesView) == Array(content[position..<position + chunk.readableBytes]))
            position += chunk.readableBytes
        }
        #expect(position == content.count)
        #expect(largestChunk <= 1 << 20, "reads come in bounded chunks")
        try await store.remove(object)
    }

    @Test func writesLandWhileTheSourceIsStillProducing() async throws {
        // The store must write chunk by chunk, not collect the whole source first: by the time the source
        // yields its last piece, earlier megabytes are already in RADOS.
        let object = location()
        let store = self.store
        let piece = ByteBuffer(bytes: patternBytes(count: 256 << 10, seed: 2))
        let source = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            Task {
                for _ in 0..<16 { continuation.yield(piece) }  // 4 MiB
                // wait until the store has written at least one chunk, or give up after 10 s
                var seen: Int64 = 0
                for _ in 0..<200 where seen == 0 {
                    seen = (try? await store.stat(object).size) ?? 0
                    if seen == 0 { try? await Task.sleep(for: .milliseconds(50)) }
                }
                if seen == 0 { continuation.finish(throwing: ObjectStoreError(.other(errno: 0), "nothing written while the source was open")) }
                continuation.yield(piece)
                continuation.finish()
            }
        }
        #expect(try await store.write(object, from: source, mode: .createExclusive) == 17 * 256 << 10)
        try await store.remove(object)
    }

    @Test func rangedReadsReturnExactlyTheRange() async throws {
        let object = location()
        let content = patternBytes(count: 3 << 20, seed: 3)
        try await store.writeFull(object, bytes: ByteBuffer(bytes: content), mode: .createExclusive)
        for range: Range<Int64> in [0..<10, 1_000_000..<2_500_000, (3 << 20) - 5..<(3 << 20), 100..<100] {
            let bytes = try await store.read(object, range: range).collect(upTo: 4 << 20)
            #expect(Array(bytes.readableBytesView) == Array(content[Int(range.lowerBound)..<Int(range.upperBound)]), "range \(range)")
        }
        // a range past the end is cut at the end
        let tail = try await store.read(object, range: (3 << 20) - 4..<(4 << 20)).collect(upTo: 4 << 20)
        #expect(Array(tail.readableBytesView) == Array(content.suffix(4)))
        #expect(try await store.read(object, range: 5 << 20..<6 << 20).collect(upTo: 1).readableBytes == 0)
        try await store.remove(object)
    }

    @Test func statReportsSizeAndModificationTime() async throws {
        let object = location()
        let before = Date().addingTimeInterval(-2)
        try await store.writeFull(object, bytes: ByteBuffer(repeating: 7, count: 1234), mode: .replace)
        let info = try await store.stat(object)
        #expect(info.size == 1234)
        #expect(info.modified >= before.addingTimeInterval(-1) && info.modified <= Date().addingTimeInterval(2))
        try await store.remove(object)
    }

    @Test func aMissingObjectIsNotFoundEverywhere() async throws {
        let object = location()
        await expectCode(.notFound) { _ = try await store.stat(object) }
        await expectCode(.notFound) { _ = try await store.read(object, range: nil).collect(upTo: 10) }
        await expectCode(.notFound) { try await store.remove(object) }
        await expectCode(.notFound) { _ = try await store.attributes(of: object) }
    }

    @Test func exclusiveCreateRefusesAnExistingObjectAndKeepsIt() async throws {
        let object = location()
        try await store.writeFull(object, bytes: ByteBuffer(string: "first"), mode: .createExclusive)
        await expectCode(.alreadyExists) {
            try await store.writeFull(object, bytes: ByteBuffer(string: "second"), mode: .createExclusive)
        }
        await expectCode(.alreadyExists) {
            _ = try await store.write(object, from: [ByteBuffer(string: "third")].async, mode: .createExclusive)
        }
        #expect(try await store.read(object, range: nil).collect(upTo: 100) == ByteBuffer(string: "first"))
        try await store.remove(object)
    }

    @Test func replaceTruncatesALongerObject() async throws {
        let object = location()
        try await store.writeFull(object, bytes: ByteBuffer(bytes: patternBytes(count: 2 << 20, seed: 4)), mode: .replace)
        _ = try await store.write(object, from: [ByteBuffer(string: "short")].async, mode: .replace)
        #expect(try await store.stat(object).size == 5)
        try await store.remove(object)
    }

    @Test func anEmptySourceCreatesAnEmptyObject() async throws {
        let object = location()
        #expect(try await store.write(object, from: [ByteBuffer]().async, mode: .createExclusive) == 0)
        #expect(try await store.stat(object).size == 0)
        try await store.remove(object)
    }

    @Test func aSourceThatFailsMidwayLeavesNoObject() async throws {
        struct ClientWentAway: Error {}
        let object = location()
        let source = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            for seed in 0..<12 { continuation.yield(ByteBuffer(bytes: patternBytes(count: 256 << 10, seed: UInt64(seed)))) }
            continuation.finish(throwing: ClientWentAway())
        }
        await #expect(throws: ClientWentAway.self) {
            _ = try await store.write(object, from: source, mode: .createExclusive)
        }
        await expectCode(.notFound) { _ = try await store.stat(object) }
    }

    @Test func extendedAttributesAreSetReadListedAndRemoved() async throws {
        let object = location()
        try await store.writeFull(object, bytes: ByteBuffer(string: "x"), mode: .createExclusive)
        try await store.setAttribute("sha256", value: Array("abc".utf8), of: object)
        try await store.setAttribute("binary", value: [0, 255, 0, 1], of: object)
        #expect(try await store.attribute("sha256", of: object) == Array("abc".utf8))
        #expect(try await store.attribute("missing", of: object) == nil)
        #expect(try await store.attributes(of: object) == ["sha256": Array("abc".utf8), "binary": [0, 255, 0, 1]])
        try await store.removeAttribute("binary", of: object)
        #expect(try await store.attributes(of: object) == ["sha256": Array("abc".utf8)])
        try await store.remove(object)
    }

    @Test func indexEntriesArePagedInKeyOrderFilteredAndRemoved() async throws {
        let index = location()
        let entries = (0..<25).map { IndexEntry(key: String(format: "k%03d", $0), value: Array("v\($0)".utf8)) }
            + [IndexEntry(key: "other", value: [])]
        try await store.setIndexEntries(entries.shuffled(), of: index)

        var collected: [IndexEntry] = []
        var after: String?
        var pages = 0
        repeat {
            let page = try await store.indexEntries(of: index, startAfter: after, prefix: "k", limit: 10)
            collected += page.entries
            after = page.entries.last?.key
            pages += 1
            if !page.hasMore { break }
        } while pages < 10
        #expect(collected == Array(entries.prefix(25)))
        #expect(pages == 3)

        let picked = try await store.indexEntries(of: index, keys: ["k003", "nope", "other"])
        #expect(picked == [IndexEntry(key: "k003", value: Array("v3".utf8)), IndexEntry(key: "other", value: [])])

        try await store.removeIndexEntries(["k000", "k001", "nope"], of: index)
        #expect(try await store.indexEntries(of: index, startAfter: nil, prefix: nil, limit: 2).entries.map(\.key) == ["k002", "k003"])
        try await store.remove(index)
    }

    @Test func theIndexOfAMissingObjectIsEmpty() async throws {
        let index = location()
        #expect(try await store.indexEntries(of: index, startAfter: nil, prefix: nil, limit: 10) == IndexPage(entries: [], hasMore: false))
        #expect(try await store.indexEntries(of: index, keys: ["a"]) == [])
        try await store.removeIndexEntries(["a"], of: index)
    }

    @Test func concurrentWritersEachGetTheirOwnBytes() async throws {
        let store = self.store
        let objects = (0..<24).map { (location("concurrent-\($0)"), patternBytes(count: 100_000 + $0 * 37_000, seed: UInt64($0))) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (object, content) in objects {
                group.addTask {
                    let pieces = stride(from: 0, to: content.count, by: 50_000).map { ByteBuffer(bytes: content[$0..<min($0 + 50_000, content.count)]) }
                    _ = try await store.write(object, from: pieces.async, mode: .createExclusive)
                }
            }
            try await group.waitForAll()
        }
        for (object, content) in objects {
            let back = try await store.read(object, range: nil).collect(upTo: 2 << 20)
            #expect(Array(back.readableBytesView) == content)
            try await store.remove(object)
        }
    }

    @Test func concurrentExclusiveCreatesOfOneKeyHaveExactlyOneWinner() async throws {
        let store = self.store
        let object = location()
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    (try? await store.writeFull(object, bytes: ByteBuffer(string: "writer \(writer)"), mode: .createExclusive)) != nil
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        try await store.remove(object)
    }

    @Test(arguments: ["", String(repeating: "k", count: 2000), "nul\u{0}inside"])
    func invalidKeysAreRefusedBeforeReachingRADOS(_ key: String) async throws {
        let object = ObjectLocation(pool: pool, key: key)
        await expectCode(.invalidArgument) { try await store.writeFull(object, bytes: ByteBuffer(string: "x"), mode: .replace) }
    }

    @Test func aPoolThatDoesNotExistIsNotFound() async throws {
        let object = ObjectLocation(pool: "media.no-such-pool", key: "x")
        await expectCode(.notFound) { _ = try await store.stat(object) }
    }
}

/// Expects `body` to throw an ``ObjectStoreError`` with `code`.
func expectCode(_ code: ObjectStoreError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void) async {
    do {
        try await body()
        Issue.record("expected \(code), nothing was thrown", sourceLocation: sourceLocation)
    } catch let error as ObjectStoreError {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected ObjectStoreError \(code), got \(error)", sourceLocation: sourceLocation)
    }
}

extension Array where Element: Sendable {
    var async: AsyncStream<Element> {
        AsyncStream { continuation in
            for element in self { continuation.yield(element) }
            continuation.finish()
        }
    }
}
