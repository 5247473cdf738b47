import Foundation
import MediaCore
import MediaTesting
import Testing

/// The conformance suites of the ports, run against the in-memory implementations the unit tests use (the
/// same suites run against RADOS and PostgreSQL in the integration tests).
@Suite struct InMemoryConformanceTests {
    @Test(arguments: BlobStoreConformance<InMemoryBlobStore>.checks)
    func blobStore(_ name: String) async throws {
        try await BlobStoreConformance(store: InMemoryBlobStore(pools: ["media.photo"]), pool: "media.photo").run(name)
    }

    @Test(arguments: PendingLedgerConformance<InMemoryPendingLedger>.checks)
    func pendingLedger(_ name: String) async throws {
        let ledger = InMemoryPendingLedger()
        try await PendingLedgerConformance(pools: ("media.photo", "media.audio")) { ledger }.run(name)
    }

    @Test(arguments: MetadataStoreConformance<InMemoryMetadataStore>.checks)
    func metadataStore(_ name: String) async throws {
        try await MetadataStoreConformance(store: InMemoryMetadataStore()).run(name)
    }

    @Test(arguments: CorrelationStoreConformance<InMemoryCorrelationStore>.checks)
    func correlationStore(_ name: String) async throws {
        try await CorrelationStoreConformance(store: InMemoryCorrelationStore()).run(name)
    }

    @Test func everySuiteHasItsChecks() {
        #expect(BlobStoreConformance<InMemoryBlobStore>.checks.count == 18)
        #expect(PendingLedgerConformance<InMemoryPendingLedger>.checks.count == 8)
        #expect(MetadataStoreConformance<InMemoryMetadataStore>.checks.count == 27)
        #expect(CorrelationStoreConformance<InMemoryCorrelationStore>.checks.count == 4)
    }
}
