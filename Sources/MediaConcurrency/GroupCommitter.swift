/// Group commit: items submitted for one key while an operation on that key is in flight are sent
/// together in the next one. At low load each item goes alone at once; under load, batches grow by
/// themselves. Each submitter waits for the operation that carried its item.
public actor GroupCommitter<Key: Hashable & Sendable, Item: Sendable> {
    private var queues: [Key: [(Item, CheckedContinuation<Void, any Error>)]] = [:]
    private var busy: Set<Key> = []
    private let perform: @Sendable (Key, [Item]) async throws -> Void

    /// - Parameter perform: the operation that carries a batch of items of one key.
    public init(_ perform: @escaping @Sendable (Key, [Item]) async throws -> Void) {
        self.perform = perform
    }

    /// Adds `item` to the next batch of `key` and waits until the operation that carried it is done.
    public func submit(_ item: Item, to key: Key) async throws {
        try await withCheckedThrowingContinuation { continuation in
            queues[key, default: []].append((item, continuation))
            if busy.insert(key).inserted {
                Task { await self.drain(key) }
            }
        }
    }

    /// Items of `key` waiting for the next operation (not those the running one carries).
    public func queued(for key: Key) -> Int {
        queues[key]?.count ?? 0
    }

    private func drain(_ key: Key) async {
        while let batch = queues.removeValue(forKey: key), !batch.isEmpty {
            do {
                try await perform(key, batch.map(\.0))
                for (_, waiter) in batch { waiter.resume() }
            } catch {
                for (_, waiter) in batch { waiter.resume(throwing: error) }
            }
        }
        busy.remove(key)
    }
}
