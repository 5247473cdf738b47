/// Group commit with an answer per item: items submitted while `lanes` batches are in flight go together
/// in the next one (at most `maxBatch` at a time), and each submitter gets its own item's result. At low
/// load each item goes alone at once; under load, batches grow by themselves and no item waits for a
/// timer. More than one lane keeps a slow batch from holding up everything behind it.
public actor Batcher<Item: Sendable, Output: Sendable> {
    private var queue: [(Item, CheckedContinuation<Output, any Error>)] = []
    private var inFlight = 0
    private let lanes: Int
    private let maxBatch: Int
    private let perform: @Sendable ([Item]) async -> [Result<Output, any Error>]

    /// - Parameters:
    ///   - lanes: batches in flight at once.
    ///   - perform: carries a batch; returns one result per item, in the items' order.
    public init(maxBatch: Int, lanes: Int = 1, perform: @escaping @Sendable ([Item]) async -> [Result<Output, any Error>]) {
        self.maxBatch = max(1, maxBatch)
        self.lanes = max(1, lanes)
        self.perform = perform
    }

    /// Adds `item` to the next batch and waits for its result.
    public func submit(_ item: Item) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            queue.append((item, continuation))
            if inFlight < lanes {
                inFlight += 1
                Task { await self.drain() }
            }
        }
    }

    /// Batches carried so far, and their items.
    public private(set) var carried = (batches: 0, items: 0)

    /// Items waiting for the next batch (not those of the running one).
    public var queued: Int { queue.count }

    private func drain() async {
        while !queue.isEmpty {
            let batch = Array(queue.prefix(maxBatch))
            queue.removeFirst(batch.count)
            carried = (carried.batches + 1, carried.items + batch.count)
            let results = await perform(batch.map(\.0))
            for (index, (_, waiter)) in batch.enumerated() {
                waiter.resume(with: index < results.count ? results[index] : .failure(BatcherError()))
            }
        }
        inFlight -= 1
    }
}

/// A batch operation returned fewer results than it was given items: a bug of the operation.
public struct BatcherError: Error, Sendable, CustomStringConvertible {
    public init() {}

    public var description: String { "a batch operation answered for fewer items than it was given" }
}
