import Synchronization

/// Thrown by ``withDeadline(_:operation:)`` when the operation did not finish in time.
public struct DeadlineExceeded: Error, Sendable, CustomStringConvertible {
    public var timeout: Duration
    public init(timeout: Duration) { self.timeout = timeout }
    public var description: String { "did not finish within \(timeout)" }
}

/// Runs `operation` and throws ``DeadlineExceeded`` once `timeout` has passed, whether or not the
/// operation reacts to cancellation: it is cancelled, and left to finish in the background if it does not
/// stop. A client call that ignores cancellation (a PostgresNIO query on a connection whose server stopped
/// answering without closing it) therefore cannot hold its caller past the deadline; what it still holds
/// (a pooled connection) is freed when the call ends. The operation runs in a task of its own that
/// inherits the caller's task-local values and priority; cancelling the caller cancels it too.
public func withDeadline<T: Sendable>(
    _ timeout: Duration,
    operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = DeadlineRace<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            race.start(continuation, timeout: timeout, operation: operation)
        }
    } onCancel: {
        race.finish(.failure(CancellationError()))
    }
}

/// The operation against its timer: whichever ends first answers the caller, once, and cancels the other.
private final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        /// How it ended, when it ended before the caller's continuation was there (a cancelled caller).
        var early: Result<T, any Error>?
        var done = false
        var work: Task<Void, Never>?
        var timer: DeadlineTimer.Token?
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>, timeout: Duration, operation: @escaping @Sendable () async throws -> T) {
        let early: Result<T, any Error>? = state.withLock { state in
            if state.done { return state.early }
            state.continuation = continuation
            return nil
        }
        if let early {
            continuation.resume(with: early)
            return
        }
        // unstructured on purpose: a task group would wait for an operation that ignores cancellation
        let work = Task {
            let result: Result<T, any Error>
            do {
                result = .success(try await operation())
            } catch {
                result = .failure(error)
            }
            self.finish(result)
        }
        let timer = DeadlineTimer.shared.schedule(after: timeout) {
            self.finish(.failure(DeadlineExceeded(timeout: timeout)))
        }
        let finished = state.withLock { state in
            if !state.done {
                state.work = work
                state.timer = timer
            }
            return state.done
        }
        if finished {
            work.cancel()
            DeadlineTimer.shared.cancel(timer)
        }
    }

    /// Answers the caller with `result` unless it was answered already, and cancels what still runs.
    func finish(_ result: Result<T, any Error>) {
        let (continuation, work, timer) = state.withLock { state -> (CheckedContinuation<T, any Error>?, Task<Void, Never>?, DeadlineTimer.Token?) in
            guard !state.done else { return (nil, nil, nil) }
            state.done = true
            if state.continuation == nil { state.early = result }
            defer {
                state.continuation = nil
                state.work = nil
                state.timer = nil
            }
            return (state.continuation, state.work, state.timer)
        }
        work?.cancel()
        if let timer { DeadlineTimer.shared.cancel(timer) }
        continuation?.resume(with: result)
    }
}
