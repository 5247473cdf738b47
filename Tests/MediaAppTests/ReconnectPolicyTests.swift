import Testing

@testable import RadosStore

/// When the gateway replaces its Ceph client: after a run of timeouts as long as the setting, at once
/// when blocklisted, never in a burst.
@Suite struct ReconnectPolicyTests {
    let start = ContinuousClock.now

    /// The policy's answers to timeouts at each of `seconds` after the start.
    func timeouts(_ policy: inout ReconnectPolicy, at seconds: [Double]) -> [Bool] {
        seconds.map { policy.timedOut(at: start + .milliseconds(Int64($0 * 1000))) }
    }

    @Test func timeoutsThatKeepComingForTheWholeWindowReconnectOnce() {
        var policy = ReconnectPolicy(after: .seconds(60))
        // the next reconnect needs another whole window of timeouts
        let answers = timeouts(&policy, at: [0, 30, 59, 61, 62, 100, 122])
        #expect(answers == [false, false, false, true, false, false, true])
    }

    @Test func aQuietSpellEndsTheRun() {
        var policy = ReconnectPolicy(after: .seconds(60))
        // no timeout for more than the window: what came before was a passing fault (a host re-peering)
        let answers = timeouts(&policy, at: [0, 50, 111, 150, 171])
        #expect(answers == [false, false, false, false, true])
    }

    @Test func aBlocklistedClientIsReplacedAtOnceButNotInABurst() {
        var policy = ReconnectPolicy(after: .seconds(60))
        let answers = [0, 0.5, 2].map { policy.blocklisted(at: start + .milliseconds(Int64($0 * 1000))) }
        #expect(answers == [true, false, true])
    }

    @Test func zeroNeverReconnects() {
        var policy = ReconnectPolicy(after: .zero)
        let answers = timeouts(&policy, at: (0..<200).map(Double.init))
        #expect(answers.count == 200 && !answers.contains(true))
        #expect(policy.blocklisted(at: start) == false)
    }
}
