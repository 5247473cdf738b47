import Crypto
import Foundation
import NIOCore

/// Counts, hashes and caps the bytes of one upload as they stream through, and enforces a deadline.
/// Owned by one task: the sequence that feeds it and the code that reads the totals run in the same task.
public final class UploadMeter {
    public let maxBytes: Int64
    public let deadline: ContinuousClock.Instant
    public private(set) var bytes: Int64 = 0
    private var hasher = SHA256()

    public init(maxBytes: Int64, deadline: ContinuousClock.Instant) {
        self.maxBytes = maxBytes
        self.deadline = deadline
    }

    /// Accounts for one chunk; throws `tooLarge` the moment the total passes the cap.
    func consume(_ chunk: ByteBuffer) throws(MediaError) {
        bytes += Int64(chunk.readableBytes)
        guard bytes <= maxBytes else {
            throw MediaError(.tooLarge, "the file is larger than the \(maxBytes) bytes allowed for its kind")
        }
        guard ContinuousClock.now < deadline else {
            throw MediaError(.timedOut, "the upload took longer than allowed")
        }
        chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
    }

    /// Lowercase hex SHA-256 of everything consumed. Call once, at the end.
    public func finalizeHex() -> String {
        hasher.finalize().hexEncoded
    }
}

/// A part's body after its first bytes were read for sniffing: those bytes first, then the rest of the
/// original iterator, all of it through an ``UploadMeter``.
public struct MeteredBody<Iterator: AsyncIteratorProtocol>: AsyncSequence where Iterator.Element == ByteBuffer {
    public typealias Element = ByteBuffer

    var prefix: [ByteBuffer]
    var rest: Iterator?
    let meter: UploadMeter

    public struct AsyncIterator: AsyncIteratorProtocol {
        var prefix: [ByteBuffer]
        var rest: Iterator?
        let meter: UploadMeter

        public mutating func next() async throws -> ByteBuffer? {
            let chunk: ByteBuffer?
            if !prefix.isEmpty {
                chunk = prefix.removeFirst()
            } else {
                chunk = try await rest?.next()
            }
            guard let chunk else { return nil }
            try meter.consume(chunk)
            return chunk
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(prefix: prefix, rest: rest, meter: meter)
    }
}
