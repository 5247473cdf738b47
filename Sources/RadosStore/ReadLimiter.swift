import MediaConcurrency
import NIOConcurrencyHelpers

/// Permits taken first come first served: the RADOS reads in flight in one process (the memory librados
/// holds for them then depends on this bound and the chunk size, not on how many clients are streaming),
/// and the buffers of the process's read-buffer pool (``ReadBuffers``).
final class ReadLimiter: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var available: Int
        /// Oldest first from `head`; a waiter whose task was cancelled is left as `nil`.
        var waiting: [Waiter?] = []
        var head = 0
        var nextID: UInt64 = 0
        /// Waits given an id that have not started waiting yet.
        var starting: Set<UInt64> = []
        /// Of those, the ones cancelled or timed out already, with the error to end them with.
        var ended: [UInt64: any Error] = [:]
    }

    private let state: NIOLockedValueBox<State>

    init(permits: Int) {
        state = NIOLockedValueBox(State(available: max(1, permits)))
    }

    /// Runs `body` holding one permit (the wait for it is not cancelled).
    func withPermit<T>(_ body: () async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        return try await body()
    }

    /// Waits for a permit and takes it, cancelled or not.
    func acquire() async {
        // a wait that is neither cancellable nor timed ends only with a permit
        try? await wait(cancellable: false, timeout: nil)
    }

    /// A wait for a permit that lasted its whole timeout; no permit was taken.
    struct TimedOut: Error {}

    /// Waits for a permit and takes it; throws `CancellationError` (taking none) if the task is cancelled
    /// first, ``TimedOut`` (taking none) after `timeout`. A download whose client left must not keep
    /// waiting for a buffer while it holds another.
    func acquireUnlessCancelled(timeout: Duration) async throws {
        try Task.checkCancellation()
        try await wait(cancellable: true, timeout: timeout)
    }

    private enum Entry {
        case granted
        case ended(any Error)
        case waiting
    }

    private func wait(cancellable: Bool, timeout: Duration?) async throws {
        // a permit at once, or an id to wait under
        let id = state.withLockedValue { state -> UInt64? in
            if state.available > 0 {
                state.available -= 1
                return nil
            }
            state.nextID += 1
            state.starting.insert(state.nextID)
            return state.nextID
        }
        guard let id else { return }
        let timer = timeout.map { timeout in
            DeadlineTimer.shared.schedule(after: timeout) { [self] in end(id, with: TimedOut()) }
        }
        defer { if let timer { DeadlineTimer.shared.cancel(timer) } }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let entry = state.withLockedValue { state -> Entry in
                    state.starting.remove(id)
                    // cancelled or timed out before it could wait
                    if let error = state.ended.removeValue(forKey: id) { return .ended(error) }
                    // a permit may have come back meanwhile
                    if state.available > 0 {
                        state.available -= 1
                        return .granted
                    }
                    state.waiting.append(Waiter(id: id, continuation: continuation))
                    return .waiting
                }
                switch entry {
                case .granted: continuation.resume()
                case .ended(let error): continuation.resume(throwing: error)
                case .waiting: break
                }
            }
        } onCancel: {
            if cancellable { end(id, with: CancellationError()) }
        }
    }

    /// Ends the wait `id` with `error` if it is waiting, or marks it so that it does not start to wait if
    /// it is about to; a wait that has its permit already is left as it is.
    private func end(_ id: UInt64, with error: any Error) {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, any Error>? in
            if let index = state.waiting[state.head...].firstIndex(where: { $0?.id == id }), let waiter = state.waiting[index] {
                state.waiting[index] = nil
                return waiter.continuation
            }
            if state.starting.contains(id) { state.ended[id] = error }
            return nil
        }
        waiter?.resume(throwing: error)
    }

    /// Gives a permit back (to the oldest waiter, if any).
    func release() {
        let next: CheckedContinuation<Void, any Error>? = state.withLockedValue { state in
            // the permit passes straight to the oldest waiter still waiting
            while state.head < state.waiting.count {
                let waiter = state.waiting[state.head]
                state.head += 1
                if state.head > 64 && state.head * 2 > state.waiting.count {
                    state.waiting.removeFirst(state.head)
                    state.head = 0
                }
                if let waiter { return waiter.continuation }
            }
            state.available += 1
            return nil
        }
        next?.resume()
    }
}
