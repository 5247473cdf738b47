import Foundation
import MediaCore
import NIOCore
import Testing

/// A source's own failure (a client that went away mid-upload).
struct ClientWentAway: Error {}

/// What a piecewise write reported, in order.
actor ReportLog {
    private(set) var values: [Int64] = []
    func add(_ value: Int64) { values.append(value) }
}

/// What every ``BlobStore`` must do, written once and run against each implementation (RADOS, in memory).
public struct BlobStoreConformance<Store: BlobStore>: ConformanceSuite {
    public let store: Store
    public let pool: String
    /// A pool that does not exist.
    public let missingPool: String

    public init(store: Store, pool: String, missingPool: String = "media.no-such-pool") {
        self.store = store
        self.pool = pool
        self.missingPool = missingPool
    }

    public static var table: [String: @Sendable (Self) async throws -> Void] {
        [
            "a small object written in one buffer reads back": { try await $0.smallObject() },
            "ten megabytes streamed in pieces read back byte-identical in bounded chunks": { try await $0.streamed() },
            "writes land while the source is still producing": { try await $0.writesWhileProducing() },
            "ranged reads return exactly the range, cut at the end": { try await $0.ranges() },
            "stat reports the size and modification time": { try await $0.stat() },
            "a missing object is not found everywhere": { try await $0.missing() },
            "an exclusive create refuses an existing object and keeps it": { try await $0.exclusive() },
            "replace truncates a longer object": { try await $0.replace() },
            "an empty source creates an empty object": { try await $0.empty() },
            "a source that fails midway leaves no object": { try await $0.failingSource() },
            "concurrent writers each get their own bytes": { try await $0.concurrentWriters() },
            "concurrent exclusive creates of one key have exactly one winner": { try await $0.oneWinner() },
            "invalid keys are refused": { try await $0.invalidKeys() },
            "a pool that does not exist is not found": { try await $0.missingPoolIsNotFound() },
            "a claimed object takes pieces at offsets, each reported as it lands": { try await $0.piecewise() },
            "a writer whose claim was taken over cannot write or seal": { try await $0.takenOver() },
            "a piecewise write whose source fails keeps what it delivered": { try await $0.piecewiseFailingSource() },
            "sealing cuts what abandoned writes left beyond the size and ends the claim": { try await $0.seal() },
        ]
    }

    func location(_ label: String = #function) -> ObjectLocation {
        ObjectLocation(pool: pool, key: uniqueKey(label))
    }

    func smallObject() async throws {
        let object = location()
        try await store.write(object, bytes: ByteBuffer(string: "hello, store"), mode: .createExclusive)
        #expect(try await store.read(object, range: nil).collect(upTo: 1 << 20) == ByteBuffer(string: "hello, store"))
        try await store.remove(object)
    }

    func streamed() async throws {
        let object = location()
        let content = patternBytes(count: 10 << 20, seed: 10)
        let written = try await store.write(object, from: pieces(content, size: 61_440).async, mode: .createExclusive)
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

    func writesWhileProducing() async throws {
        // The store must write as the source produces, not collect the whole source first: before the
        // source yields its last piece, earlier bytes are already stored.
        let object = location()
        let store = self.store
        let piece = ByteBuffer(bytes: patternBytes(count: 256 << 10, seed: 2))
        let source = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            Task {
                for _ in 0..<16 { continuation.yield(piece) }  // 4 MiB
                var seen: Int64 = 0
                for _ in 0..<200 where seen == 0 {
                    seen = (try? await store.stat(object).size) ?? 0
                    if seen == 0 { try? await Task.sleep(for: .milliseconds(50)) }
                }
                if seen == 0 { continuation.finish(throwing: BlobStoreError(.other, "nothing written while the source was open")) }
                continuation.yield(piece)
                continuation.finish()
            }
        }
        #expect(try await store.write(object, from: source, mode: .createExclusive) == 17 * 256 << 10)
        try await store.remove(object)
    }

    func ranges() async throws {
        let object = location()
        let content = patternBytes(count: 3 << 20, seed: 3)
        try await store.write(object, bytes: ByteBuffer(bytes: content), mode: .createExclusive)
        for range: Range<Int64> in [0..<10, 1_000_000..<2_500_000, (3 << 20) - 5..<(3 << 20), 100..<100] {
            let bytes = try await store.read(object, range: range).collect(upTo: 4 << 20)
            #expect(Array(bytes.readableBytesView) == Array(content[Int(range.lowerBound)..<Int(range.upperBound)]), "range \(range)")
        }
        let tail = try await store.read(object, range: (3 << 20) - 4..<(4 << 20)).collect(upTo: 4 << 20)
        #expect(Array(tail.readableBytesView) == Array(content.suffix(4)), "a range past the end is cut at the end")
        #expect(try await store.read(object, range: 5 << 20..<6 << 20).collect(upTo: 1).readableBytes == 0)
        try await store.remove(object)
    }

    func stat() async throws {
        let object = location()
        let before = Date().addingTimeInterval(-2)
        try await store.write(object, bytes: ByteBuffer(repeating: 7, count: 1234), mode: .replace)
        let info = try await store.stat(object)
        #expect(info.size == 1234)
        #expect(info.modified >= before.addingTimeInterval(-1) && info.modified <= Date().addingTimeInterval(2))
        try await store.remove(object)
    }

    func missing() async throws {
        let object = location()
        await expectBlobError(.notFound) { _ = try await store.stat(object) }
        await expectBlobError(.notFound) { _ = try await store.read(object, range: nil).collect(upTo: 10) }
        await expectBlobError(.notFound) { try await store.remove(object) }
        #expect(try await store.exists(object) == false)
        try await store.removeIfPresent(object)
    }

    func exclusive() async throws {
        let object = location()
        try await store.write(object, bytes: ByteBuffer(string: "first"), mode: .createExclusive)
        await expectBlobError(.alreadyExists) {
            try await store.write(object, bytes: ByteBuffer(string: "second"), mode: .createExclusive)
        }
        await expectBlobError(.alreadyExists) {
            _ = try await store.write(object, from: [ByteBuffer(string: "third")].async, mode: .createExclusive)
        }
        #expect(try await store.read(object, range: nil).collect(upTo: 100) == ByteBuffer(string: "first"))
        try await store.remove(object)
    }

    func replace() async throws {
        let object = location()
        try await store.write(object, bytes: ByteBuffer(bytes: patternBytes(count: 2 << 20, seed: 4)), mode: .replace)
        _ = try await store.write(object, from: [ByteBuffer(string: "short")].async, mode: .replace)
        #expect(try await store.stat(object).size == 5)
        #expect(try await store.read(object, range: nil).collect(upTo: 100) == ByteBuffer(string: "short"))
        try await store.remove(object)
    }

    func empty() async throws {
        let object = location()
        #expect(try await store.write(object, from: [ByteBuffer]().async, mode: .createExclusive) == 0)
        #expect(try await store.stat(object).size == 0)
        try await store.remove(object)
    }

    func failingSource() async throws {
        let object = location()
        let source = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            for seed in 0..<12 { continuation.yield(ByteBuffer(bytes: patternBytes(count: 256 << 10, seed: UInt64(seed)))) }
            continuation.finish(throwing: ClientWentAway())
        }
        await #expect(throws: ClientWentAway.self) {
            _ = try await store.write(object, from: source, mode: .createExclusive)
        }
        await expectBlobError(.notFound) { _ = try await store.stat(object) }
    }

    func concurrentWriters() async throws {
        let store = self.store
        let objects = (0..<24).map { (location("concurrent-\($0)"), patternBytes(count: 100_000 + $0 * 37_000, seed: UInt64($0))) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (object, content) in objects {
                group.addTask { _ = try await store.write(object, from: pieces(content, size: 50_000).async, mode: .createExclusive) }
            }
            try await group.waitForAll()
        }
        for (object, content) in objects {
            let back = try await store.read(object, range: nil).collect(upTo: 2 << 20)
            #expect(Array(back.readableBytesView) == content)
            try await store.remove(object)
        }
    }

    func oneWinner() async throws {
        let store = self.store
        let object = location()
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    (try? await store.write(object, bytes: ByteBuffer(string: "writer \(writer)"), mode: .createExclusive)) != nil
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        try await store.remove(object)
    }

    func piecewise() async throws {
        let object = location()
        let content = patternBytes(count: (3 << 20) + 12_345, seed: 20)
        try await store.claim(object, for: "writer-a")
        #expect(try await store.stat(object).size == 0, "a claim creates the object empty")
        let reports = ReportLog()
        let first = try await store.write(object, from: pieces(Array(content[..<(2 << 20)]), size: 100_000).async, at: 0, writer: "writer-a") {
            await reports.add($0)
        }
        #expect(first == 2 << 20)
        let landed = await reports.values
        #expect(!landed.isEmpty && landed == landed.sorted() && landed.last == first, "each chunk is reported as it lands: \(landed)")
        let second = try await store.write(object, from: pieces(Array(content[(2 << 20)...]), size: 77_777).async, at: 2 << 20, writer: "writer-a") {
            _ in
        }
        #expect(second == Int64(content.count - (2 << 20)))
        try await store.seal(object, size: Int64(content.count), writer: "writer-a")
        #expect(Array(try await store.read(object, range: nil).collect(upTo: 4 << 20).readableBytesView) == content)
        try await store.remove(object)
    }

    func takenOver() async throws {
        let object = location()
        try await store.claim(object, for: "writer-a")
        _ = try await store.write(object, from: [ByteBuffer(bytes: patternBytes(count: 1000, seed: 21))].async, at: 0, writer: "writer-a") { _ in }
        try await store.claim(object, for: "writer-b")
        await expectBlobError(.superseded) {
            _ = try await store.write(object, from: [ByteBuffer(bytes: [1, 2, 3])].async, at: 1000, writer: "writer-a") { _ in }
        }
        await expectBlobError(.superseded) { try await store.seal(object, size: 1000, writer: "writer-a") }
        #expect(try await store.stat(object).size == 1000, "the refused writes changed nothing")
        _ = try await store.write(object, from: [ByteBuffer(bytes: [9, 9])].async, at: 1000, writer: "writer-b") { _ in }
        #expect(try await store.stat(object).size == 1002)
        try await store.remove(object)
    }

    func piecewiseFailingSource() async throws {
        let object = location()
        let delivered = patternBytes(count: 1_500_000, seed: 22)
        let source = AsyncThrowingStream<ByteBuffer, any Error> { continuation in
            for piece in pieces(delivered, size: 250_000) { continuation.yield(piece) }
            continuation.finish(throwing: ClientWentAway())
        }
        try await store.claim(object, for: "writer-a")
        let reports = ReportLog()
        await #expect(throws: ClientWentAway.self) {
            _ = try await store.write(object, from: source, at: 0, writer: "writer-a") { await reports.add($0) }
        }
        #expect(await reports.values.last == Int64(delivered.count), "everything delivered landed and was reported")
        #expect(Array(try await store.read(object, range: nil).collect(upTo: 2 << 20).readableBytesView) == delivered)
        try await store.remove(object)
    }

    func seal() async throws {
        let object = location()
        let content = patternBytes(count: 300_000, seed: 23)
        try await store.claim(object, for: "writer-a")
        _ = try await store.write(object, from: [ByteBuffer(bytes: content)].async, at: 0, writer: "writer-a") { _ in }
        try await store.seal(object, size: 200_000, writer: "writer-a")
        #expect(Array(try await store.read(object, range: nil).collect(upTo: 1 << 20).readableBytesView) == Array(content[..<200_000]))
        await expectBlobError(.superseded) {
            _ = try await store.write(object, from: [ByteBuffer(bytes: [1])].async, at: 0, writer: "writer-a") { _ in }
        }
        try await store.remove(object)
    }

    func invalidKeys() async throws {
        for key in ["", String(repeating: "k", count: 2000), "nul\u{0}inside"] {
            let object = ObjectLocation(pool: pool, key: key)
            await expectBlobError(.invalidArgument) { try await store.write(object, bytes: ByteBuffer(string: "x"), mode: .replace) }
        }
    }

    func missingPoolIsNotFound() async throws {
        await expectBlobError(.notFound) { _ = try await store.stat(ObjectLocation(pool: missingPool, key: "x")) }
    }
}
