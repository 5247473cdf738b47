import Foundation
import Logging
import MediaCore
import Testing

/// The three in-memory ports together, for unit tests of the use cases.
public typealias MemoryStores = Stores<InMemoryMetadataStore, InMemoryBlobStore, InMemoryPendingLedger>

extension Stores where Metadata == InMemoryMetadataStore, Blobs == InMemoryBlobStore, Ledger == InMemoryPendingLedger {
    /// Empty stores; the blob store knows the pools of `pools` only.
    public static func inMemory(pools: StoragePools = StoragePools(), clock: MediaClock = .system) -> MemoryStores {
        Stores(metadata: InMemoryMetadataStore(), blobs: InMemoryBlobStore(pools: Set(pools.all), clock: clock), ledger: InMemoryPendingLedger())
    }
}

/// A logger that says nothing below errors, for tests.
public let quietLogger: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = .error
    return logger
}()

/// Polls `condition` until it holds (or `timeout` passes, which fails the test): for work that finishes in
/// the background.
public func eventually(
    within timeout: Duration = .seconds(15),
    _ condition: () async throws -> Bool,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("condition not met within \(timeout)", sourceLocation: sourceLocation)
}
