import Synchronization

/// Work started after an answer was sent (clearing the pending-ledger entries of committed objects) that
/// must still end before the stores close: a process waits for it on shutdown (``drained()``) before it
/// disconnects from Ceph, so that a SIGTERM leaves no entry behind for the reconciler.
public final class BackgroundWork: Sendable {
    /// The process's background work.
    public static let shared = BackgroundWork()

    private struct State {
        var running = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Pieces of work started and not finished.
    public var running: Int { state.withLock { $0.running } }

    /// Runs `body` in a task of its own, counted until it ends.
    public func start(_ body: @escaping @Sendable () async -> Void) {
        state.withLock { $0.running += 1 }
        Task {
            await body()
            let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.running -= 1
                guard state.running == 0 else { return [] }
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    /// Returns once no work is running (at once when none is).
    public func drained() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state -> Bool in
                guard state.running > 0 else { return true }
                state.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}
