import NIOConcurrencyHelpers

/// Bounds the RADOS reads in flight in one process, first come first served: the memory that downloads
/// hold in read buffers (ours and librados') then depends on this bound and the chunk size, not on how
/// many clients are streaming.
final class ReadLimiter: Sendable {
    private struct State {
        var available: Int
        var waiting: [CheckedContinuation<Void, Never>] = []
        var head = 0
    }

    private let state: NIOLockedValueBox<State>

    init(permits: Int) {
        state = NIOLockedValueBox(State(available: max(1, permits)))
    }

    /// Runs `body` holding one permit.
    func withPermit<T>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    private func acquire() async {
        let granted = state.withLockedValue { state -> Bool in
            guard state.available > 0 else { return false }
            state.available -= 1
            return true
        }
        guard !granted else { return }
        await withCheckedContinuation { continuation in
            let now = state.withLockedValue { state -> Bool in
                // a permit may have come back meanwhile
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiting.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func release() {
        let next: CheckedContinuation<Void, Never>? = state.withLockedValue { state in
            guard state.head < state.waiting.count else {
                state.available += 1
                return nil
            }
            // the permit passes straight to the oldest waiter
            let next = state.waiting[state.head]
            state.head += 1
            if state.head > 64 && state.head * 2 > state.waiting.count {
                state.waiting.removeFirst(state.head)
                state.head = 0
            }
            return next
        }
        next?.resume()
    }
}
