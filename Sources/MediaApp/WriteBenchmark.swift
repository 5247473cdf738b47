import Foundation
import MediaCore
import NIOCore

extension MediaRuntime {
    /// Writes `objects` objects of `size` bytes through the blob store's streaming write (the path uploads
    /// take), each from pieces of `pieceSize` bytes, `concurrency` at a time; then removes them. Returns the
    /// time the writes took. For `mediagw-bench rados-write`.
    public func timeStreamingWrites(
        pool: String,
        objects: Int,
        size: Int,
        pieceSize: Int,
        concurrency: Int,
        exclusive: Bool
    ) async throws
        -> Duration
    {
        let blobs = self.blobs
        var payload = ByteBuffer()
        payload.writeBytes((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let pieces = stride(from: 0, to: size, by: pieceSize).map { payload.getSlice(at: $0, length: min(pieceSize, size - $0))! }
        let prefix = "mediagw-bench-\(UUID().uuidString.prefix(8))"
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func startOne() {
                let location = ObjectLocation(pool: pool, key: "\(prefix)-\(next)")
                next += 1
                group.addTask {
                    let source = AsyncStream<ByteBuffer> { continuation in
                        for piece in pieces { continuation.yield(piece) }
                        continuation.finish()
                    }
                    _ = try await blobs.write(location, from: source, mode: exclusive ? .createExclusive : .replace)
                }
            }
            for _ in 0..<min(concurrency, objects) { startOne() }
            while try await group.next() != nil {
                if next < objects { startOne() }
            }
        }
        let elapsed = ContinuousClock.now - started
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<objects {
                if index >= concurrency { try await group.next() }
                group.addTask { try await blobs.remove(ObjectLocation(pool: pool, key: "\(prefix)-\(index)")) }
            }
            try await group.waitForAll()
        }
        return elapsed
    }
}
