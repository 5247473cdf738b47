import MediaCore
import Synchronization
import Testing

@Suite struct BackgroundWorkTests {
    @Test func drainedWaitsForEveryPieceOfWorkStarted() async throws {
        let work = BackgroundWork()
        await work.drained()  // nothing running: at once
        let open = Gate()
        let finished = Counter()
        for _ in 0..<3 {
            work.start {
                while !open.isOpen { try? await Task.sleep(for: .milliseconds(5)) }
                finished.add()
            }
        }
        #expect(work.running == 3)
        let waiter = Task {
            await work.drained()
            return finished.value
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(finished.value == 0)
        open.open()
        #expect(await waiter.value == 3, "drained returns only once all three ended")
        #expect(work.running == 0)
    }
}

private final class Gate: Sendable {
    private let state = Mutex(false)
    var isOpen: Bool { state.withLock { $0 } }
    func open() { state.withLock { $0 = true } }
}

private final class Counter: Sendable {
    private let state = Mutex(0)
    var value: Int { state.withLock { $0 } }
    func add() { state.withLock { $0 += 1 } }
}
