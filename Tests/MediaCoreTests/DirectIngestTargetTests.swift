import Foundation
import MediaCore
import MediaTesting
import NIOCore
import Testing

@testable import MediaIngest

/// The direct ingest target's memory over a run: a directory ingest opens a set per file.
@Suite struct DirectIngestTargetTests {
    @Test func aSetIsForgottenOnceCommittedSoThatARunDoesNotKeepEverySet() async throws {
        let pools = StoragePools()
        let stores = MemoryStores.inMemory(pools: pools)
        let target = DirectIngestTarget(
            media: MediaService(storage: stores, settings: UploadSettings(), logger: quietLogger),
            uploads: UploadService(storage: stores, pools: pools, settings: UploadSettings(), logger: quietLogger)
        )
        var sets: [IngestSet] = []
        for file in 0..<3 {
            let set = try await target.openSet(for: IngestDestination(ownerID: "ingest", context: .community, contextID: "file-\(file)"))
            _ = try await target.upload([ByteBuffer(bytes: fakeJPEG(5000, seed: UInt64(file)))].async, size: 5000, filename: "\(file).jpg", into: set)
            sets.append(set)
        }
        #expect(target.remembered == 3)
        for set in sets { try await target.commit(set) }
        #expect(target.remembered == 0)
        #expect(try await stores.metadata.uploadSet(UploadSetID(sets[0].id)!)?.state == .committed)
    }
}
