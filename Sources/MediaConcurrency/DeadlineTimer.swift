import Synchronization

/// Runs actions at deadlines for many waits at once, from one task that sleeps until the earliest of them.
///
/// A deadline costs a lock and a heap insertion, and its cancellation a dictionary removal: no task and no
/// system timer of its own. Every PostgreSQL statement runs under a deadline (``withDeadline(_:operation:)``),
/// so a timer task per statement made a task switch and a wake-up of the dispatch manager thread each, for
/// deadlines that almost never fire. An action runs at most `resolution` after its deadline (later only
/// when the cooperative pool is busy), and the sleeping task wakes at most once per `resolution`.
public final class DeadlineTimer: Sendable {
    /// The timer of the process, at a resolution of 20 ms.
    public static let shared = DeadlineTimer(resolution: .milliseconds(20))

    /// A scheduled action, to cancel it.
    public struct Token: Sendable, Hashable {
        fileprivate let id: UInt64
    }

    private struct Entry {
        var deadline: ContinuousClock.Instant
        var id: UInt64
    }

    private enum Sleep {
        /// Nothing is scheduled: woken by the next schedule.
        case parked(CheckedContinuation<Void, Never>)
        /// Sleeping until `until`: woken early (the nap cancelled) by an earlier deadline.
        case napping(until: ContinuousClock.Instant, nap: Task<Void, Never>)
    }

    private struct State {
        /// A binary min-heap by deadline. A cancelled entry stays until it is popped or the heap compacted.
        var heap: [Entry] = []
        /// The actions still to run, by id.
        var actions: [UInt64: @Sendable () -> Void] = [:]
        var nextID: UInt64 = 0
        var started = false
        /// What the sweeping task is doing; nil while it runs.
        var sleep: Sleep?
    }

    /// The longest an action may wait past its deadline (when threads are free), and the shortest sleep.
    public let resolution: Duration
    private let state = Mutex(State())

    /// A timer of its own (tests); the process shares ``shared``.
    public init(resolution: Duration) {
        precondition(resolution > .zero, "a timer's resolution is positive")
        self.resolution = resolution
    }

    /// The number of actions scheduled and not yet run or cancelled.
    public var pending: Int { state.withLock { $0.actions.count } }

    /// Runs `action` once `timeout` has passed, unless cancelled first. The action runs on the timer's task:
    /// it must be short (resume a continuation, cancel a task).
    @discardableResult
    public func schedule(after timeout: Duration, _ action: @escaping @Sendable () -> Void) -> Token {
        let deadline = ContinuousClock.now + timeout
        var start = false
        var wake: Sleep?
        let token = state.withLock { state -> Token in
            state.nextID += 1
            let id = state.nextID
            state.actions[id] = action
            Self.push(Entry(deadline: deadline, id: id), into: &state.heap)
            if state.heap.count > 64 && state.heap.count > 4 * state.actions.count {
                Self.compact(&state)
            }
            if !state.started {
                state.started = true
                start = true
            }
            switch state.sleep {
            case .parked:
                wake = state.sleep
                state.sleep = nil
            case .napping(let until, _) where deadline < until:
                wake = state.sleep
                state.sleep = nil
            default:
                break
            }
            return Token(id: id)
        }
        switch wake {
        case .parked(let continuation): continuation.resume()
        case .napping(_, let nap): nap.cancel()
        case nil: break
        }
        if start {
            Task.detached { [self] in await sweep() }
        }
        return token
    }

    /// Cancels a scheduled action; returns whether it had not run yet (it never will now).
    @discardableResult
    public func cancel(_ token: Token) -> Bool {
        state.withLock { $0.actions.removeValue(forKey: token.id) != nil }
    }

    private func sweep() async {
        while true {
            var due: [@Sendable () -> Void] = []
            let now = ContinuousClock.now
            let napping: Task<Void, Never>? = state.withLock { state in
                while let top = state.heap.first, top.deadline <= now || state.actions[top.id] == nil {
                    Self.popMin(from: &state.heap)
                    if let action = state.actions.removeValue(forKey: top.id) { due.append(action) }
                }
                guard let next = state.heap.first?.deadline else { return nil }
                let until = max(next, now + resolution)
                let nap = Task { [resolution] in
                    _ = try? await Task.sleep(until: until, tolerance: resolution, clock: .continuous)
                }
                state.sleep = .napping(until: until, nap: nap)
                return nap
            }
            for action in due { action() }
            if let napping {
                await napping.value
            } else {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let scheduled = state.withLock { state in
                        if state.heap.isEmpty { state.sleep = .parked(continuation) }
                        return !state.heap.isEmpty
                    }
                    if scheduled { continuation.resume() }
                }
            }
            state.withLock { $0.sleep = nil }
        }
    }

    private static func push(_ entry: Entry, into heap: inout [Entry]) {
        heap.append(entry)
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child].deadline < heap[parent].deadline else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    private static func popMin(from heap: inout [Entry]) {
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        siftDown(0, in: &heap)
    }

    private static func siftDown(_ start: Int, in heap: inout [Entry]) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < heap.count else { return }
            let right = left + 1
            let child = right < heap.count && heap[right].deadline < heap[left].deadline ? right : left
            guard heap[child].deadline < heap[parent].deadline else { return }
            heap.swapAt(child, parent)
            parent = child
        }
    }

    /// Drops cancelled entries and rebuilds the heap: cancelled entries would otherwise pile up until their
    /// deadlines (a minute of statements that all finished in time).
    private static func compact(_ state: inout State) {
        let actions = state.actions
        state.heap.removeAll { actions[$0.id] == nil }
        for index in stride(from: state.heap.count / 2 - 1, through: 0, by: -1) {
            siftDown(index, in: &state.heap)
        }
    }
}
