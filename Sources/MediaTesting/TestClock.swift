import Foundation
import MediaCore
import Synchronization

/// A wall clock that moves only when told to.
public final class TestClock: Sendable {
    private let current: Mutex<Date>

    public init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        current = Mutex(start)
    }

    /// The clock, as the use cases take it.
    public var clock: MediaClock { MediaClock { self.now } }

    public var now: Date { current.withLock { $0 } }

    public func advance(by duration: Duration) {
        current.withLock { $0 = $0.addingTimeInterval(duration.seconds) }
    }
}
