import Foundation
import MediaApp
import MediaCore
import MediaTesting
import NIOCore
import PostgresMetadata
import RadosStore
import Testing

@testable import RadosStore

/// The conformance suites of the ports, run against the real adapters (the same suites run against the
/// in-memory ones in the unit tests).
@Suite struct RadosBlobStoreConformanceTests {
    @Test(arguments: BlobStoreConformance<RadosBlobStore>.checks)
    func check(_ name: String) async throws {
        let isolation = try await Isolation.suite("BlobConformance")
        try await BlobStoreConformance(store: isolation.blobs, pool: isolation.pools.photo).run(name)
    }

    @Test func theSuiteHasItsChecks() {
        #expect(BlobStoreConformance<RadosBlobStore>.checks.count == 18)
    }
}

/// Each check starts from an empty ledger: the checks share one namespace and run one at a time.
@Suite(.serialized) struct RadosPendingLedgerConformanceTests {
    @Test(arguments: PendingLedgerConformance<RadosPendingLedger>.checks)
    func check(_ name: String) async throws {
        let isolation = try await Isolation.suite("LedgerConformance")
        let blobs = isolation.blobs
        try await PendingLedgerConformance(pools: (isolation.pools.photo, isolation.pools.audio)) { RadosPendingLedger(blobs: blobs) }.run(name)
    }

    @Test func theSuiteHasItsChecks() {
        #expect(PendingLedgerConformance<RadosPendingLedger>.checks.count == 8)
    }
}

/// The checks share one schema; job checks would claim each other's jobs if they ran at once.
@Suite(.serialized) struct PostgresMetadataStoreConformanceTests {
    @Test(arguments: MetadataStoreConformance<PostgresMetadataStore>.checks)
    func check(_ name: String) async throws {
        let own = MetadataStoreConformance<PostgresMetadataStore>.checksNeedingAStoreOfTheirOwn.sorted()
        let isolation = try await Isolation.suite(own.firstIndex(of: name).map { "MetadataConformanceOwn\($0)" } ?? "MetadataConformance")
        try await MetadataStoreConformance(store: isolation.metadata).run(name)
    }

    /// The same checks with group commit on: whatever shares a transaction behaves as it does alone.
    @Test(arguments: MetadataStoreConformance<PostgresMetadataStore>.checks)
    func checkWithGroupCommit(_ name: String) async throws {
        let own = MetadataStoreConformance<PostgresMetadataStore>.checksNeedingAStoreOfTheirOwn.sorted()
        let isolation = try await Isolation.suite(own.firstIndex(of: name).map { "GroupCommitConformanceOwn\($0)" } ?? "GroupCommitConformance")
        let store = PostgresMetadataStore(
            database: isolation.metadata.database,
            groupCommit: PostgresGroupCommit(store: isolation.metadata),
            logger: TestStack.logger
        )
        try await MetadataStoreConformance(store: store).run(name)
    }

    @Test func theSuiteHasItsChecks() {
        #expect(MetadataStoreConformance<PostgresMetadataStore>.checks.count == 27)
        #expect(MetadataStoreConformance<PostgresMetadataStore>.checksNeedingAStoreOfTheirOwn.count == 1)
    }
}

/// The correlation links in PostgreSQL; the retention check drops whole days and gets a schema of its own.
@Suite struct PostgresCorrelationStoreConformanceTests {
    @Test(arguments: CorrelationStoreConformance<PostgresMetadataStore>.checks)
    func check(_ name: String) async throws {
        let own = CorrelationStoreConformance<PostgresMetadataStore>.checksNeedingAStoreOfTheirOwn.contains(name)
        let isolation = try await Isolation.suite(own ? "CorrelationConformanceOwn" : "CorrelationConformance")
        try await CorrelationStoreConformance(store: isolation.metadata).run(name)
    }

    @Test func theSuiteHasItsChecks() {
        #expect(CorrelationStoreConformance<PostgresMetadataStore>.checks.count == 4)
        #expect(CorrelationStoreConformance<PostgresMetadataStore>.checksNeedingAStoreOfTheirOwn.count == 1)
    }
}

/// What only RADOS shows: where the ledger keeps its entries.
@Suite struct RadosPendingLedgerLayoutTests {
    @Test func entriesLiveInHourBucketsOfTheLedgersShardListedInTheDirectory() async throws {
        let isolation = try await Isolation.suite("LedgerLayout")
        let ledger = RadosPendingLedger(blobs: isolation.blobs, shard: 7)
        let at = Date(timeIntervalSince1970: 1_700_003_700)  // 2023-11-14 23:15:00 UTC
        let object = ObjectLocation(pool: isolation.pools.photo, key: uniqueKey())
        let ticket = try await ledger.register(object, PendingEntry(mediaID: .generate(), uploadSetID: nil, registeredAt: at))
        #expect(ticket.slot == "_pending.2023111423.07")
        let bucket = ObjectLocation(pool: object.pool, key: ticket.slot)
        #expect(try await isolation.blobs.entries(of: bucket, keys: [object.key]).count == 1)
        let directory = ObjectLocation(pool: object.pool, key: RadosPendingLedger.directoryKey)
        #expect(try await isolation.blobs.entries(of: directory, keys: [ticket.slot]).count == 1)
        try await ledger.complete(ticket)
        #expect(try await isolation.blobs.entries(of: bucket, keys: [object.key]).isEmpty)
        #expect(try await ledger.closePeriods(in: object.pool, endedBefore: Date()) >= 1)
        #expect(try await isolation.blobs.entries(of: directory, keys: [ticket.slot]).isEmpty, "the emptied bucket is retired")
        #expect(try await !isolation.blobs.exists(bucket))
    }

    @Test func bucketNamesRoundTripToTheirHour() {
        let date = Date(timeIntervalSince1970: 1_800_003_700)
        let name = RadosPendingLedger.bucketName(for: date, shard: 7)
        #expect(name == "_pending.2027011509.07")
        #expect(RadosPendingLedger.bucketEnd(name) == Date(timeIntervalSince1970: 1_800_007_200))
        #expect(RadosPendingLedger.bucketEnd(RadosPendingLedger.directoryKey) == nil)
    }

    @Test func bucketNamesAgreeWithTheGregorianCalendarInUTC() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        // hours from 1600 to 2400 in steps that land on every month, leap days, century years, before 1970
        var dates = stride(from: -11_676_096_000.0, to: 13_569_465_600.0, by: 86_400 * 29.3 + 3_601).map {
            Date(timeIntervalSince1970: $0)
        }
        dates += [0, -1, 951_782_400, 951_868_799, 4_107_542_400, 1_800_003_700].map { Date(timeIntervalSince1970: $0) }
        #expect(dates.count > 9_000)
        for date in dates {
            let c = calendar.dateComponents([.year, .month, .day, .hour], from: date)
            let expected = "_pending." + String(format: "%04d%02d%02d%02d.%02d", c.year!, c.month!, c.day!, c.hour!, 3)
            #expect(RadosPendingLedger.bucketName(for: date, shard: 3) == expected, "\(date.timeIntervalSince1970)")
        }
    }
}

@Suite struct ChunkGathererTests {
    @Test func piecesOfAnySizeMakeFullChunksOfSlicesAndAShorterLastOne() {
        var generator = SystemRandomNumberGenerator()
        var streams = 0
        for _ in 0..<50 {
            let size = Int.random(in: 1...64, using: &generator)
            let bytes = (0..<Int.random(in: 0...500, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            var chunks: [(pieces: [ByteBuffer], count: Int)] = []
            var gatherer = ChunkGatherer(size: size)
            var offset = 0
            while offset < bytes.count {
                let length = min(Int.random(in: 0...100, using: &generator), bytes.count - offset)
                var piece = ByteBuffer(bytes: bytes[offset..<offset + length])
                offset += length
                while piece.readableBytes > 0 {
                    if gatherer.fill(from: &piece) { chunks.append(gatherer.take()) }
                }
            }
            if gatherer.count > 0 { chunks.append(gatherer.take()) }
            #expect(chunks.dropLast().allSatisfy { $0.count == size })
            #expect(chunks.allSatisfy { $0.count == $0.pieces.reduce(0) { $0 + $1.readableBytes } && $0.count > 0 })
            #expect(chunks.flatMap { $0.pieces.flatMap { Array($0.readableBytesView) } } == bytes)
            #expect(gatherer.count == 0 && gatherer.pieces.isEmpty)
            streams += 1
        }
        #expect(streams == 50)
    }

    @Test func aChunkHoldsSlicesOfThePiecesNotCopies() {
        var piece = ByteBuffer(bytes: Array(repeating: 7, count: 100))
        let storage = piece.withUnsafeReadableBytes { $0.baseAddress }
        var gatherer = ChunkGatherer(size: 40)
        let full = gatherer.fill(from: &piece)
        #expect(full)
        let chunk = gatherer.take()
        #expect(chunk.pieces.count == 1 && piece.readableBytes == 60)
        #expect(chunk.pieces[0].withUnsafeReadableBytes { $0.baseAddress } == storage)
    }
}
