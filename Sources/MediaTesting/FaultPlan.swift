import MediaCore
import Synchronization

/// Stops the use cases at one ``FaultPoint``, as a process killed there would stop: the task that reaches
/// it never goes on (``crash(at:occurrence:)``), or waits until released (``pause(at:occurrence:)``).
/// A test then looks at what was left and lets a new "process" (new use cases over the same stores) and
/// the reconciler clean it up.
public final class FaultPlan: Sendable {
    private enum Mode { case crash, pause }

    private struct State {
        var counts: [FaultPoint: Int] = [:]
        var reached: [FaultPoint: Int] = [:]
        var waitingForReach: [(FaultPoint, CheckedContinuation<Void, Never>)] = []
        var paused: [CheckedContinuation<Void, Never>] = []
        var released = false
    }

    private let point: FaultPoint
    private let occurrence: Int
    private let mode: Mode
    private let state = Mutex(State())

    private init(point: FaultPoint, occurrence: Int, mode: Mode) {
        self.point = point
        self.occurrence = occurrence
        self.mode = mode
    }

    /// The `occurrence`-th time `point` is reached, the task stops there for ever.
    public static func crash(at point: FaultPoint, occurrence: Int = 1) -> FaultPlan {
        FaultPlan(point: point, occurrence: occurrence, mode: .crash)
    }

    /// The `occurrence`-th time `point` is reached, the task waits there until ``release()``.
    public static func pause(at point: FaultPoint, occurrence: Int = 1) -> FaultPlan {
        FaultPlan(point: point, occurrence: occurrence, mode: .pause)
    }

    /// The injection to hand to the use cases.
    public var injection: FaultInjection {
        FaultInjection { point in await self.passing(point) }
    }

    /// Waits until the planned point has been reached (the task that reached it is stopped there).
    public func reached() async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if (state.reached[point] ?? 0) >= 1 { return true }
                state.waitingForReach.append((point, continuation))
                return false
            }
            if done { continuation.resume() }
        }
    }

    /// Lets paused tasks go on.
    public func release() {
        let paused = state.withLock { state in
            state.released = true
            defer { state.paused.removeAll() }
            return state.paused
        }
        for continuation in paused { continuation.resume() }
    }

    private func passing(_ reachedPoint: FaultPoint) async {
        let stop = state.withLock { state -> Bool in
            state.counts[reachedPoint, default: 0] += 1
            return reachedPoint == point && state.counts[reachedPoint] == occurrence
        }
        guard stop else { return }
        switch mode {
        case .crash:
            // never resumed: this "process" is dead (an unsafe continuation, which nothing reports as leaked)
            await withUnsafeContinuation { (_: UnsafeContinuation<Void, Never>) in announce(reachedPoint) }
        case .pause:
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.released { return true }
                    state.paused.append(continuation)
                    return false
                }
                announce(reachedPoint)
                if resumeNow { continuation.resume() }
            }
        }
    }

    private func announce(_ reachedPoint: FaultPoint) {
        let waiters = state.withLock { state in
            state.reached[reachedPoint, default: 0] += 1
            defer { state.waitingForReach.removeAll { $0.0 == reachedPoint } }
            return state.waitingForReach.filter { $0.0 == reachedPoint }.map(\.1)
        }
        for waiter in waiters { waiter.resume() }
    }
}
