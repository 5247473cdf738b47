import Foundation
import NIOCore

/// What a stat of a stored object returns.
public struct ObjectInfo: Hashable, Sendable {
    public var size: Int64
    /// The object's modification time (seconds resolution in RADOS).
    public var modified: Date

    public init(size: Int64, modified: Date) {
        self.size = size
        self.modified = modified
    }
}

/// How a write treats an object that already exists.
public enum ObjectWriteMode: Sendable, Hashable {
    /// Create the object, or replace its whole content.
    case replace
    /// Create the object; fail with ``BlobStoreError/Code/alreadyExists`` if it exists.
    case createExclusive
}

/// The bytes of an object, delivered in bounded chunks as they are read from the store.
/// Each call to `next()` reads at most one chunk; nothing is read ahead of the consumer beyond that.
public struct BlobChunks: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer

    private let makeNext: @Sendable () -> @Sendable () async throws -> ByteBuffer?

    /// - Parameter makeNext: called once per iteration; returns the function that yields the next chunk,
    ///   or `nil` at the end.
    public init(_ makeNext: @escaping @Sendable () -> @Sendable () async throws -> ByteBuffer?) {
        self.makeNext = makeNext
    }

    public struct AsyncIterator: AsyncIteratorProtocol, Sendable {
        let next: @Sendable () async throws -> ByteBuffer?
        public mutating func next() async throws -> ByteBuffer? { try await next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(next: makeNext()) }

    /// Collects every chunk into one buffer. For small objects only (a photo to decode, a test): the point
    /// of this type is that large objects are never held whole.
    public func collect(upTo maxBytes: Int) async throws -> ByteBuffer {
        var all = ByteBuffer()
        for try await var chunk in self {
            guard all.readableBytes + chunk.readableBytes <= maxBytes else {
                throw BlobStoreError(.invalidArgument, "object is larger than \(maxBytes) bytes")
            }
            all.writeBuffer(&chunk)
        }
        return all
    }
}

/// Durable storage of media bytes: the originals and renditions, by location. Every error thrown is a
/// ``BlobStoreError``.
///
/// Implementations never hold a whole object in memory: writes consume their source in bounded chunks and
/// reads produce bounded chunks.
public protocol BlobStore: Sendable {
    /// Streams `source` into the object at `location`, in chunks of bounded size, and returns the number of
    /// bytes written. When the source throws or the store fails midway, the partial object is removed
    /// (best effort) and the error is rethrown.
    func write<Source: AsyncSequence>(
        _ location: ObjectLocation,
        from source: Source,
        mode: ObjectWriteMode
    ) async throws -> Int64 where Source.Element == ByteBuffer

    /// Reads `range` of the object (the whole object when `nil`) as a sequence of chunks.
    /// A range that runs past the end of the object is cut at the end.
    func read(_ location: ObjectLocation, range: Range<Int64>?) -> BlobChunks

    /// Size and modification time of the object.
    func stat(_ location: ObjectLocation) async throws -> ObjectInfo

    /// Removes the object; throws ``BlobStoreError/Code/notFound`` when there is none.
    func remove(_ location: ObjectLocation) async throws

    // MARK: Objects written piecewise (resumable uploads)

    /// Claims the object for one `writer` (creating it empty if it does not exist): from now on the writes
    /// of ``write(_:from:at:writer:landed:)`` and ``seal(_:size:writer:)`` by any other writer fail with
    /// ``BlobStoreError/Code/superseded``, whatever process they come from. The claim is kept in the store,
    /// with the object.
    func claim(_ location: ObjectLocation, for writer: String) async throws

    /// Streams `source` into the object from `offset` on, in chunks of bounded size, while `writer` holds
    /// its claim; `landed` is told the bytes this call has made durable so far after each chunk. Unlike
    /// ``write(_:from:mode:)``, what landed stays when the source or the store fails: when the source
    /// throws, what it had delivered is written first, then its error rethrown. Returns the bytes written.
    func write<Source: AsyncSequence>(
        _ location: ObjectLocation,
        from source: Source,
        at offset: Int64,
        writer: String,
        landed: @escaping @Sendable (Int64) async throws -> Void
    ) async throws -> Int64 where Source.Element == ByteBuffer

    /// Ends a piecewise object while `writer` holds it: cuts it to `size` bytes (what earlier, abandoned
    /// writes left beyond is dropped) and removes the claim.
    func seal(_ location: ObjectLocation, size: Int64, writer: String) async throws
}

extension BlobStore {
    /// Writes a small object from one buffer.
    public func write(_ location: ObjectLocation, bytes: ByteBuffer, mode: ObjectWriteMode) async throws {
        _ = try await write(location, from: OneBuffer(buffer: bytes), mode: mode)
    }

    /// Removes the object; an object that is already gone is not an error.
    public func removeIfPresent(_ location: ObjectLocation) async throws {
        do {
            try await remove(location)
        } catch let error as BlobStoreError where error.code == .notFound {}
    }

    /// Whether the object exists.
    public func exists(_ location: ObjectLocation) async throws -> Bool {
        do {
            _ = try await stat(location)
            return true
        } catch let error as BlobStoreError where error.code == .notFound {
            return false
        }
    }
}

/// One buffer as an async sequence.
struct OneBuffer: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let buffer: ByteBuffer

    struct AsyncIterator: AsyncIteratorProtocol {
        var buffer: ByteBuffer?
        mutating func next() async -> ByteBuffer? {
            defer { buffer = nil }
            return buffer
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: buffer) }
}
