import MediaConcurrency
import Synchronization
import Testing

@Suite struct DeadlineTimerTests {
    /// Waits (polling) until `condition` holds, at most `limit`.
    func waitUntil(_ limit: Duration = .seconds(60), _ condition: () -> Bool) async throws {
        let start = ContinuousClock.now
        while !condition() {
            guard ContinuousClock.now - start < limit else { return }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test func anActionRunsOnceItsDeadlineHasPassedAndNotBefore() async throws {
        let timer = DeadlineTimer(resolution: .milliseconds(5))
        let firedAt = Mutex<ContinuousClock.Instant?>(nil)
        let scheduled = ContinuousClock.now
        timer.schedule(after: .milliseconds(200)) { firedAt.withLock { $0 = .now } }
        #expect(timer.pending == 1)
        try await waitUntil { firedAt.withLock { $0 } != nil }
        let fired = try #require(firedAt.withLock { $0 })
        #expect(fired - scheduled >= .milliseconds(200))
        #expect(timer.pending == 0)
    }

    @Test func aCancelledActionNeverRuns() async throws {
        let timer = DeadlineTimer(resolution: .milliseconds(5))
        let ran = Mutex(0)
        let token = timer.schedule(after: .milliseconds(50)) { ran.withLock { $0 += 1 } }
        let witness = Mutex(false)
        timer.schedule(after: .milliseconds(100)) { witness.withLock { $0 = true } }
        #expect(timer.cancel(token))
        try await waitUntil { witness.withLock { $0 } }
        #expect(witness.withLock { $0 }, "the later action ran")
        #expect(ran.withLock { $0 } == 0)
        #expect(!timer.cancel(token), "a cancelled token is gone")
    }

    @Test func anEarlierDeadlineWakesATimerSleepingUntilALaterOne() async throws {
        let timer = DeadlineTimer(resolution: .milliseconds(5))
        let late = Mutex(false)
        let early = Mutex(false)
        let lateToken = timer.schedule(after: .seconds(600)) { late.withLock { $0 = true } }
        // let the timer go to sleep until the late deadline
        try await Task.sleep(for: .milliseconds(50))
        let scheduled = ContinuousClock.now
        timer.schedule(after: .milliseconds(100)) { early.withLock { $0 = true } }
        try await waitUntil { early.withLock { $0 } }
        #expect(early.withLock { $0 })
        #expect(ContinuousClock.now - scheduled < .seconds(30), "not held until the 600 s deadline")
        #expect(!late.withLock { $0 })
        timer.cancel(lateToken)
    }

    @Test func actionsRunInTheOrderOfTheirDeadlinesWhateverTheOrderTheyWereScheduledIn() async throws {
        let timer = DeadlineTimer(resolution: .milliseconds(5))
        let order = Mutex<[Int]>([])
        let delays = [7, 2, 9, 4, 1, 8, 3, 6, 5, 10]
        for delay in delays {
            timer.schedule(after: .milliseconds(40 * delay)) { order.withLock { $0.append(delay) } }
        }
        try await waitUntil { order.withLock { $0.count } == delays.count }
        #expect(order.withLock { $0 } == delays.sorted())
    }

    @Test func manyCancelledDeadlinesLeaveTheLiveOnesToRun() async throws {
        let timer = DeadlineTimer(resolution: .milliseconds(5))
        let fired = Mutex(Set<Int>())
        var tokens: [DeadlineTimer.Token] = []
        for index in 0..<2_000 {
            tokens.append(timer.schedule(after: .seconds(600)) { fired.withLock { _ = $0.insert(-index) } })
        }
        for token in tokens { timer.cancel(token) }
        // each schedule below may compact the heap of cancelled entries
        for index in 0..<100 {
            timer.schedule(after: .milliseconds(20 + index)) { fired.withLock { _ = $0.insert(index) } }
        }
        #expect(timer.pending == 100)
        try await waitUntil { fired.withLock { $0.count } == 100 }
        #expect(fired.withLock { $0 } == Set(0..<100))
        #expect(timer.pending == 0)
    }

    @Test func aTimerThatRanDryWakesForTheNextDeadline() async throws {
        let timer = DeadlineTimer(resolution: .milliseconds(5))
        for round in 1...3 {
            let ran = Mutex(false)
            timer.schedule(after: .milliseconds(20)) { ran.withLock { $0 = true } }
            try await waitUntil { ran.withLock { $0 } }
            #expect(ran.withLock { $0 }, "round \(round)")
            // nothing is scheduled now: the timer parks until the next round's schedule
            try await Task.sleep(for: .milliseconds(30))
        }
    }
}
