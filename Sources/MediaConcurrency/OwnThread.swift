import Dispatch
import Foundation

/// Runs blocking `work` (a C library call, `fsync`, `waitpid`) on a thread of its own and returns its
/// result, so that it holds neither a thread of the cooperative pool nor an event loop meanwhile.
/// A thread is started per call: for work that lasts milliseconds or more, not for tight loops.
public func onOwnThread<T: Sendable, E: Error>(_ work: @escaping @Sendable () throws(E) -> T) async throws(E) -> T {
    let result: Result<T, E> = await withCheckedContinuation { continuation in
        let thread = Thread { continuation.resume(returning: Result { () throws(E) -> T in try work() }) }
        thread.stackSize = 8 << 20  // what libvips and FFmpeg expect of a caller's stack
        thread.start()
    }
    return try result.get()
}

/// A thread kept for blocking work that comes often and one call at a time (an `fsync` per journal flush):
/// calls run in order on one long-lived dispatch thread, never on the cooperative pool or an event loop,
/// and without the thread start per call that ``onOwnThread(_:)`` costs.
public final class BlockingLane: Sendable {
    private let queue: DispatchQueue

    /// - Parameter label: the thread's name in a debugger or profile.
    public init(label: String) {
        queue = DispatchQueue(label: label)
    }

    /// Runs `work` on the lane once the calls before it are done, and returns its result.
    public func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: work()) }
        }
    }
}
