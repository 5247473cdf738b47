import Foundation
import NIOCore

/// What a stat of an object returns.
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
    /// Create the object; fail with ``ObjectStoreError/Code/alreadyExists`` if it exists.
    case createExclusive
}

/// A page of key/value entries kept with an object (RADOS omap), in key order.
public struct IndexPage: Sendable, Hashable {
    public var entries: [IndexEntry]
    /// More entries follow the last one returned.
    public var hasMore: Bool

    public init(entries: [IndexEntry], hasMore: Bool) {
        self.entries = entries
        self.hasMore = hasMore
    }
}

/// One key/value entry of an object's index (RADOS omap).
public struct IndexEntry: Sendable, Hashable {
    public var key: String
    public var value: [UInt8]

    public init(key: String, value: [UInt8]) {
        self.key = key
        self.value = value
    }
}

/// The bytes of an object, delivered in bounded chunks as they are read from the store.
/// Each call to `next()` reads at most one chunk; nothing is read ahead of the consumer beyond that.
public struct ObjectChunks: AsyncSequence, Sendable {
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

    /// Collects every chunk into one buffer. For small objects and tests only: the point of this type is
    /// that large objects are never held whole.
    public func collect(upTo maxBytes: Int) async throws -> ByteBuffer {
        var all = ByteBuffer()
        for try await var chunk in self {
            guard all.readableBytes + chunk.readableBytes <= maxBytes else {
                throw ObjectStoreError(.invalidArgument, "object is larger than \(maxBytes) bytes")
            }
            all.writeBuffer(&chunk)
        }
        return all
    }
}

/// Durable storage of media bytes. Every error thrown is an ``ObjectStoreError``.
///
/// Implementations never hold a whole object in memory: writes consume their source in bounded chunks and
/// reads produce bounded chunks.
public protocol ObjectStore: Sendable {
    /// Streams `source` into the object at `location`, in chunks of bounded size, and returns the number of
    /// bytes written. When the source throws or the store fails midway, the partial object is removed
    /// (best effort) and the error is rethrown.
    func write<Source: AsyncSequence>(
        _ location: ObjectLocation, from source: Source, mode: ObjectWriteMode
    ) async throws -> Int64 where Source.Element == ByteBuffer

    /// Writes a small object in one operation.
    func writeFull(_ location: ObjectLocation, bytes: ByteBuffer, mode: ObjectWriteMode) async throws

    /// Reads `range` of the object (the whole object when `nil`) as a sequence of chunks.
    /// A range that runs past the end of the object is cut at the end.
    func read(_ location: ObjectLocation, range: Range<Int64>?) -> ObjectChunks

    /// Size and modification time of the object.
    func stat(_ location: ObjectLocation) async throws -> ObjectInfo

    /// Removes the object; throws ``ObjectStoreError/Code/notFound`` when there is none.
    func remove(_ location: ObjectLocation) async throws

    /// Sets one extended attribute of the object (creating the object if needed).
    func setAttribute(_ name: String, value: [UInt8], of location: ObjectLocation) async throws
    /// One extended attribute, or `nil` when the object has no attribute of that name.
    func attribute(_ name: String, of location: ObjectLocation) async throws -> [UInt8]?
    /// All extended attributes of the object.
    func attributes(of location: ObjectLocation) async throws -> [String: [UInt8]]
    /// Removes one extended attribute.
    func removeAttribute(_ name: String, of location: ObjectLocation) async throws

    /// Sets index entries (RADOS omap) on the object, creating the object if needed.
    func setIndexEntries(_ entries: [IndexEntry], of location: ObjectLocation) async throws
    /// Index entries in key order, after `startAfter` and starting with `prefix`, at most `limit` of them.
    func indexEntries(of location: ObjectLocation, startAfter: String?, prefix: String?, limit: Int) async throws -> IndexPage
    /// The index entries of the given keys that exist.
    func indexEntries(of location: ObjectLocation, keys: [String]) async throws -> [IndexEntry]
    /// Removes index entries; keys that do not exist are ignored.
    func removeIndexEntries(_ keys: [String], of location: ObjectLocation) async throws
}
