/// The places where a crash leaves something for the reconciler or the job lease to clean up. Production
/// code passes each one on its way; a test can stop there, as a process killed at that instant would.
public enum FaultPoint: String, Sendable, Hashable, CaseIterable {
    /// An object's ledger entry is recorded; its first byte is not written yet.
    case registered
    /// An object's bytes are all written; its row is not committed yet.
    case objectWritten
    /// A row is committed; its objects' ledger entries are not cleared yet.
    case rowCommitted
    /// A worker claimed a job; nothing of it is processed yet.
    case jobClaimed
    /// A job's renditions are written; its outcome is not committed yet.
    case jobProcessed
    /// The reconciler found no row for an old entry; the object is not removed yet.
    case orphanFound
}

/// Where the use cases tell a test which ``FaultPoint`` they reached. In production nothing listens.
public struct FaultInjection: Sendable {
    private let hook: (@Sendable (FaultPoint) async -> Void)?

    /// Nothing happens at any point.
    public static let none = FaultInjection(hook: nil)

    /// `hook` runs at every point reached; it may suspend for ever, like a process killed there.
    public init(_ hook: @escaping @Sendable (FaultPoint) async -> Void) {
        self.hook = hook
    }

    private init(hook: (@Sendable (FaultPoint) async -> Void)?) {
        self.hook = hook
    }

    func reach(_ point: FaultPoint) async {
        await hook?(point)
    }
}
