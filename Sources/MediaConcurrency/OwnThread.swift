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
