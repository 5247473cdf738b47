import Foundation

/// How much work waits, for an operator's gauges and alerts.
public struct Backlog: Sendable, Equatable {
    /// Processing jobs waiting to run, by kind of media.
    public var queuedJobs: [MediaKind: Int]
    /// How long the oldest runnable queued job of each kind has waited since it could run.
    public var oldestQueuedJob: [MediaKind: Duration]
    /// Jobs that gave up after their last attempt.
    public var deadJobs: Int
    /// Outbox events no reader has read yet (events are numbered when first read).
    public var unreadEvents: Int

    public init(queuedJobs: [MediaKind: Int] = [:], oldestQueuedJob: [MediaKind: Duration] = [:], deadJobs: Int = 0, unreadEvents: Int = 0) {
        self.queuedJobs = queuedJobs
        self.oldestQueuedJob = oldestQueuedJob
        self.deadJobs = deadJobs
        self.unreadEvents = unreadEvents
    }
}
