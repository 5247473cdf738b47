import CRados
import CRadosShim
import Foundation
import Glibc
import MediaCore
import Metrics
import NIOCore
import Tracing

/// The ``BlobStore`` on RADOS: each object is a RADOS object in its pool (in the configured namespace).
/// The omap primitives here serve the ``RadosPendingLedger``.
public struct RadosBlobStore: BlobStore {
    public let cluster: RadosCluster
    /// Where streamed reads land (``ReadBuffers``).
    private let allocator: ByteBufferAllocator

    public init(cluster: RadosCluster) {
        self.cluster = cluster
        allocator = ReadBuffers.allocator(
            chunkSize: cluster.configuration.readChunkSize,
            buffers: cluster.configuration.readBuffers,
            smallBuffers: cluster.configuration.readSmallBuffers
        )
    }

    private var chunkSize: Int { cluster.configuration.chunkSize }

    // MARK: Writing

    public func write<Source: AsyncSequence>(
        _ location: ObjectLocation,
        from source: Source,
        mode: ObjectWriteMode
    ) async throws -> Int64 where Source.Element == ByteBuffer {
        try Self.validate(location)
        return try await traced("write", location) { span in
            let written = try await cluster.withOperation {
                let io = try await cluster.ioContext(for: location.pool)
                // Pieces are gathered by reference, never copied, until a chunk's worth is pending; that chunk
                // is written while the next one gathers. Memory: at most two chunks (plus one piece).
                var chunk = ChunkGatherer(size: self.chunkSize)
                var submitted: Int64 = 0
                var inFlight: SubmittedWrite?
                // Once the first chunk has landed the object is ours, and ours to remove if the stream fails.
                var created = false
                do {
                    for try await var piece in source {
                        while piece.readableBytes > 0 {
                            guard chunk.fill(from: &piece) else { continue }
                            if let previous = inFlight {
                                inFlight = nil
                                try await previous.finish()
                                created = true
                            }
                            let full = chunk.take()
                            inFlight = try submitWrite(io, location, full.pieces, at: submitted, mode: mode)
                            submitted += Int64(full.count)
                        }
                    }
                    if let previous = inFlight {
                        inFlight = nil
                        try await previous.finish()
                        created = true
                    }
                    if chunk.count > 0 || submitted == 0 {
                        let rest = chunk.take()
                        let last = try submitWrite(io, location, rest.pieces, at: submitted, mode: mode)
                        submitted += Int64(rest.count)
                        try await last.finish()
                    }
                    return submitted
                } catch {
                    if let inFlight, await inFlight.completion.wait() >= 0 { created = true }
                    if created {
                        do {
                            try await remove(location)
                        } catch {
                            cluster.logger.warning(
                                "could not remove a partial object",
                                metadata: ["object": "\(location)", "error": "\(error)"]
                            )
                        }
                    }
                    throw error
                }
            }
            span?.attributes["rados.bytes"] = Int(written)
            return written
        }
    }

    /// Starts one chunk's write, referencing `pieces` without copying them, and returns without waiting.
    private func submitWrite(
        _ io: IOContext,
        _ location: ObjectLocation,
        _ pieces: [ByteBuffer],
        at offset: Int64,
        mode: ObjectWriteMode
    ) throws -> SubmittedWrite {
        let writeMode: mgw_write_mode = offset > 0 ? MGW_WRITE_AT : (mode == .replace ? MGW_WRITE_FULL : MGW_CREATE_EXCLUSIVE)
        return try submit(io, location, pieces, at: offset, mode: writeMode, fence: nil, metric: offset == 0 ? "write_first" : "write")
    }

    /// Hands one chunk's write to librados (`fence`: the writer attribute it requires) and returns at once.
    /// The storage of a ByteBuffer that is not mutated stays put; ``SubmittedWrite`` keeps it alive.
    private func submit(
        _ io: IOContext,
        _ location: ObjectLocation,
        _ pieces: [ByteBuffer],
        at offset: Int64,
        mode: mgw_write_mode,
        fence: [UInt8]?,
        metric: String
    ) throws -> SubmittedWrite {
        let completion = try RadosCompletion.make()
        let vectors = pieces.map { piece in
            piece.withUnsafeReadableBytes { mgw_iovec(base: $0.baseAddress, length: $0.count) }
        }
        let rc = location.key.withCString { oid in
            vectors.withUnsafeBufferPointer { vectors in
                withOptionalBytes(fence) { value in
                    mgw_rados_aio_writev(
                        io.handle,
                        oid,
                        completion.handle,
                        vectors.baseAddress,
                        vectors.count,
                        UInt64(offset),
                        mode,
                        fence == nil ? nil : Self.writerAttribute,
                        value?.baseAddress,
                        value?.count ?? 0
                    )
                }
            }
        }
        guard rc >= 0 else {
            completion.abandon()
            throw BlobStoreError.rados(rc, "write", location)
        }
        return SubmittedWrite(completion: completion, pieces: pieces, io: io, cluster: cluster, location: location, started: .now, metric: metric)
    }

    // MARK: Reading

    public func read(_ location: ObjectLocation, range: Range<Int64>?) -> BlobChunks {
        BlobChunks { [self] in
            let cursor = ReadCursor(start: range?.lowerBound ?? 0, end: range?.upperBound)
            return { try await self.readChunk(location, cursor) }
        }
    }

    private func readChunk(_ location: ObjectLocation, _ cursor: ReadCursor) async throws -> ByteBuffer? {
        guard let (offset, length) = try cursor.next(chunkSize: cluster.configuration.readChunkSize) else { return nil }
        // Allocated within the read-buffer budget, before the read waits for its turn. librados reads straight
        // into the buffer's storage (no copy): the storage stays where it is, because nothing else holds or
        // changes this buffer until the completion, which is always awaited, has fired.
        var buffer = try await ReadBuffers.buffer(length, from: allocator, wait: cluster.configuration.readBufferWait)
        let (count, read) = try await cluster.reads.withPermit {
            let storage = buffer.withUnsafeMutableWritableBytes { $0.baseAddress! }
            let count = try await perform("read", location) { io, oid, completion in
                rados_aio_read(io, oid, completion, storage.assumingMemoryBound(to: CChar.self), length, UInt64(offset))
            }
            if count > 0 { buffer.moveWriterIndex(forwardBy: Int(count)) }
            return (count, buffer)
        }
        cursor.advance(by: Int(count), requested: length)
        return count > 0 ? read : nil
    }

    public func stat(_ location: ObjectLocation) async throws -> ObjectInfo {
        let size = RadosOutput<UInt64>(0)
        let modified = RadosOutput<time_t>(0)
        _ = try await perform("stat", location) { io, oid, completion in
            rados_aio_stat(io, oid, completion, size.pointer, modified.pointer)
        }
        return ObjectInfo(size: Int64(size.value), modified: Date(timeIntervalSince1970: TimeInterval(modified.value)))
    }

    public func remove(_ location: ObjectLocation) async throws {
        _ = try await perform("remove", location) { io, oid, completion in
            rados_aio_remove(io, oid, completion)
        }
    }

    // MARK: Objects written piecewise

    /// The extended attribute that names the writer holding a piecewise object.
    static let writerAttribute = "mgw.writer"

    public func claim(_ location: ObjectLocation, for writer: String) async throws {
        let operation = WriteOperation()
        rados_write_op_create(operation.handle, LIBRADOS_CREATE_IDEMPOTENT, nil)
        Array(writer.utf8).withUnsafeBufferPointer { value in
            value.withMemoryRebound(to: CChar.self) {
                rados_write_op_setxattr(operation.handle, Self.writerAttribute, $0.baseAddress, $0.count)
            }
        }
        _ = try await perform("claim", location) { io, oid, completion in
            rados_aio_write_op_operate(operation.handle, io, completion, oid, nil, 0)
        }
    }

    public func write<Source: AsyncSequence>(
        _ location: ObjectLocation,
        from source: Source,
        at offset: Int64,
        writer: String,
        landed: @escaping @Sendable (Int64) async throws -> Void
    ) async throws -> Int64 where Source.Element == ByteBuffer {
        try Self.validate(location)
        return try await traced("write_at", location) { span in
            let written = try await cluster.withOperation {
                let io = try await cluster.ioContext(for: location.pool)
                let fence = Array(writer.utf8)
                var chunk = ChunkGatherer(size: self.chunkSize)
                var written: Int64 = 0
                // one chunk at a time, each landed (and reported) before the next is sent: the offset a client
                // is told is always durable (a chunk that failed to land stays gathered)
                func flush() async throws {
                    guard chunk.count > 0 else { return }
                    let submitted = try submitWrite(io, location, chunk.pieces, at: offset + written, fence: fence)
                    try await submitted.finish()
                    written += Int64(chunk.take().count)
                    try await landed(written)
                }
                do {
                    for try await var piece in source {
                        while piece.readableBytes > 0 {
                            if chunk.fill(from: &piece) { try await flush() }
                        }
                    }
                } catch let error as BlobStoreError {
                    throw error
                } catch {
                    // the source failed (a client that went away): what it delivered is kept
                    try await flush()
                    throw error
                }
                try await flush()
                return written
            }
            span?.attributes["rados.bytes"] = Int(written)
            return written
        }
    }

    /// A fenced chunk write: it lands only while `fence` holds the object.
    private func submitWrite(
        _ io: IOContext,
        _ location: ObjectLocation,
        _ pieces: [ByteBuffer],
        at offset: Int64,
        fence: [UInt8]
    ) throws
        -> SubmittedWrite
    {
        try submit(io, location, pieces, at: offset, mode: MGW_WRITE_AT_FENCED, fence: fence, metric: "write_at")
    }

    public func seal(_ location: ObjectLocation, size: Int64, writer: String) async throws {
        let operation = WriteOperation()
        Array(writer.utf8).withUnsafeBufferPointer { value in
            value.withMemoryRebound(to: CChar.self) {
                rados_write_op_cmpxattr(operation.handle, Self.writerAttribute, UInt8(LIBRADOS_CMPXATTR_OP_EQ), $0.baseAddress, $0.count)
            }
        }
        rados_write_op_truncate(operation.handle, UInt64(size))
        rados_write_op_rmxattr(operation.handle, Self.writerAttribute)
        _ = try await perform("seal", location) { io, oid, completion in
            rados_aio_write_op_operate(operation.handle, io, completion, oid, nil, 0)
        }
    }

    // MARK: Key/value entries of an object (omap), for the pending ledger

    /// Sets entries, creating the object if needed.
    func setEntries(_ entries: [OmapEntry], of location: ObjectLocation) async throws {
        guard !entries.isEmpty else { return }
        let keys = CByteArrays(entries.map { Array($0.key.utf8) })
        let values = CByteArrays(entries.map(\.value))
        let operation = WriteOperation()
        rados_write_op_omap_set2(operation.handle, keys.pointers, values.pointers, keys.lengths, values.lengths, entries.count)
        _ = try await perform("omap_set", location) { io, oid, completion in
            rados_aio_write_op_operate(operation.handle, io, completion, oid, nil, 0)
        }
    }

    /// Entries in key order, after `startAfter` and starting with `prefix`, at most `limit` of them; whether
    /// more follow. An object that does not exist has none.
    func entries(of location: ObjectLocation, startAfter: String?, prefix: String?, limit: Int) async throws -> (entries: [OmapEntry], hasMore: Bool)
    {
        guard limit > 0 else { return ([], false) }
        let operation = ReadOperation()
        let iterator = RadosOutput<rados_omap_iter_t?>(nil)
        let more = RadosOutput<UInt8>(0)
        let result = RadosOutput<Int32>(0)
        withOptionalCString(startAfter) { start in
            withOptionalCString(prefix) { prefix in
                rados_read_op_omap_get_vals2(operation.handle, start, prefix, UInt64(limit), iterator.pointer, more.pointer, result.pointer)
            }
        }
        do {
            _ = try await perform("omap_get", location) { io, oid, completion in
                rados_aio_read_op_operate(operation.handle, io, completion, oid, 0)
            }
        } catch let error as BlobStoreError where error.code == .notFound {
            return ([], false)
        }
        guard result.value >= 0 else { throw BlobStoreError.rados(result.value, "read omap of", location) }
        let entries = try Self.drain(iterator.value, location)
        return (entries, more.value != 0)
    }

    /// The entries of the given keys that exist.
    func entries(of location: ObjectLocation, keys: [String]) async throws -> [OmapEntry] {
        guard !keys.isEmpty else { return [] }
        let names = CByteArrays(keys.map { Array($0.utf8) })
        let operation = ReadOperation()
        let iterator = RadosOutput<rados_omap_iter_t?>(nil)
        let result = RadosOutput<Int32>(0)
        rados_read_op_omap_get_vals_by_keys2(operation.handle, names.pointers, keys.count, names.lengths, iterator.pointer, result.pointer)
        do {
            _ = try await perform("omap_get_keys", location) { io, oid, completion in
                rados_aio_read_op_operate(operation.handle, io, completion, oid, 0)
            }
        } catch let error as BlobStoreError where error.code == .notFound {
            return []
        }
        guard result.value >= 0 else { throw BlobStoreError.rados(result.value, "read omap keys of", location) }
        return try Self.drain(iterator.value, location)
    }

    /// Removes entries; keys that do not exist are ignored, and so is an object that does not.
    func removeEntries(_ keys: [String], of location: ObjectLocation) async throws {
        guard !keys.isEmpty else { return }
        let names = CByteArrays(keys.map { Array($0.utf8) })
        let operation = WriteOperation()
        rados_write_op_omap_rm_keys2(operation.handle, names.pointers, names.lengths, keys.count)
        do {
            _ = try await perform("omap_rm", location) { io, oid, completion in
                rados_aio_write_op_operate(operation.handle, io, completion, oid, nil, 0)
            }
        } catch let error as BlobStoreError where error.code == .notFound {
            return  // no object, no entries
        }
    }

    private static func drain(_ iterator: rados_omap_iter_t?, _ location: ObjectLocation) throws -> [OmapEntry] {
        guard let iterator else { return [] }
        defer { rados_omap_get_end(iterator) }
        var entries: [OmapEntry] = []
        while true {
            var key: UnsafeMutablePointer<CChar>?
            var value: UnsafeMutablePointer<CChar>?
            var keyLength = 0
            var valueLength = 0
            let rc = rados_omap_get_next2(iterator, &key, &value, &keyLength, &valueLength)
            guard rc == 0 else { throw BlobStoreError.rados(rc, "iterate omap of", location) }
            guard let key else { break }
            let keyBytes = UnsafeRawBufferPointer(start: key, count: keyLength)
            let valueBytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: valueLength)) } ?? []
            entries.append(OmapEntry(key: String(decoding: keyBytes, as: UTF8.self), value: valueBytes))
        }
        return entries
    }

    // MARK: Plumbing

    /// Submits one AIO operation and suspends until librados completes it. Returns the non-negative
    /// return value; a negative one is thrown as an ``BlobStoreError``.
    private func perform(
        _ operation: String,
        _ location: ObjectLocation,
        _ submit: (rados_ioctx_t, UnsafePointer<CChar>, rados_completion_t) -> Int32
    ) async throws -> Int32 {
        try Self.validate(location)
        return try await traced(operation, location) { _ in try await performUntraced(operation, location, submit) }
    }

    private func performUntraced(
        _ operation: String,
        _ location: ObjectLocation,
        _ submit: (rados_ioctx_t, UnsafePointer<CChar>, rados_completion_t) -> Int32
    ) async throws -> Int32 {
        try await cluster.withOperation {
            let io = try await cluster.ioContext(for: location.pool)
            let completion = try RadosCompletion.make()
            let started = ContinuousClock.now
            let submitted = location.key.withCString { submit(io.handle, $0, completion.handle!) }
            guard submitted >= 0 else {
                completion.abandon()
                throw BlobStoreError.rados(submitted, operation, location)
            }
            let rc = await completion.wait()
            // the client stays open until its operation has completed
            withExtendedLifetime(io) {}
            RadosMetrics.record(operation, since: started, rc: rc)
            cluster.observe(rc)
            guard rc >= 0 else { throw BlobStoreError.rados(rc, operation, location) }
            return rc
        }
    }

    /// Runs one RADOS operation in a client span named after it, when it is part of traced work.
    private func traced<T>(_ operation: String, _ location: ObjectLocation, _ body: ((any Span)?) async throws -> T) async throws -> T {
        try await withClientSpan("rados \(operation)") { span in
            span?.attributes["rados.operation"] = operation
            span?.attributes["rados.pool"] = location.pool
            span?.attributes["rados.object"] = location.key
            return try await body(span)
        }
    }

    static func validate(_ location: ObjectLocation) throws {
        guard !location.key.isEmpty, location.key.utf8.count <= 1024, !location.key.utf8.contains(0) else {
            throw BlobStoreError(.invalidArgument, "invalid object key \(location.key.prefix(64).debugDescription)")
        }
    }

}

/// One key/value entry of an object's omap.
struct OmapEntry: Sendable, Hashable {
    var key: String
    var value: [UInt8]
}

/// A chunk write that has been handed to librados; the memory it references stays alive until it completes.
private struct SubmittedWrite {
    let completion: RadosCompletion
    let pieces: [ByteBuffer]
    let io: IOContext
    let cluster: RadosCluster
    let location: ObjectLocation
    let started: ContinuousClock.Instant
    let metric: String

    func finish() async throws {
        let rc = await completion.wait()
        withExtendedLifetime((pieces, io)) {}
        RadosMetrics.record(metric, since: started, rc: rc)
        cluster.observe(rc)
        guard rc >= 0 else { throw BlobStoreError.rados(rc, "write", location) }
    }
}

/// The position of a streamed read.
private final class ReadCursor: @unchecked Sendable {
    private var offset: Int64
    private let end: Int64?
    private var finished = false
    private let lock = NSLock()

    init(start: Int64, end: Int64?) {
        self.offset = start
        self.end = end
    }

    func next(chunkSize: Int) throws -> (Int64, Int)? {
        try lock.withLock {
            guard offset >= 0, (end ?? offset) >= offset else {
                throw BlobStoreError(.invalidArgument, "invalid range \(offset)..<\(end ?? -1)")
            }
            guard !finished else { return nil }
            let remaining = end.map { $0 - offset } ?? Int64(chunkSize)
            guard remaining > 0 else { return nil }
            return (offset, Int(min(Int64(chunkSize), remaining)))
        }
    }

    func advance(by count: Int, requested: Int) {
        lock.withLock {
            offset += Int64(count)
            if count < requested { finished = true }
        }
    }
}

final class WriteOperation: @unchecked Sendable {
    let handle: rados_write_op_t
    init() { handle = rados_create_write_op() }
    deinit { rados_release_write_op(handle) }
}

final class ReadOperation: @unchecked Sendable {
    let handle: rados_read_op_t
    init() { handle = rados_create_read_op() }
    deinit { rados_release_read_op(handle) }
}

/// Byte strings laid out for librados' `char const* const*` + `size_t*` arguments.
final class CByteArrays: @unchecked Sendable {
    private let storage: UnsafeMutableRawPointer
    let pointers: UnsafeMutablePointer<UnsafePointer<CChar>?>
    let lengths: UnsafeMutablePointer<Int>

    init(_ items: [[UInt8]]) {
        let total = items.reduce(0) { $0 + $1.count }
        storage = .allocate(byteCount: max(total, 1), alignment: 1)
        pointers = .allocate(capacity: max(items.count, 1))
        lengths = .allocate(capacity: max(items.count, 1))
        var position = 0
        for (index, item) in items.enumerated() {
            let start = storage + position
            item.withUnsafeBytes { start.copyMemory(from: $0.baseAddress!, byteCount: item.count) }
            pointers[index] = UnsafePointer(start.assumingMemoryBound(to: CChar.self))
            lengths[index] = item.count
            position += item.count
        }
    }

    deinit {
        storage.deallocate()
        pointers.deallocate()
        lengths.deallocate()
    }
}

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { body($0) }
}

private func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString { body($0) }
}

/// Latency and errors of RADOS operations, by operation.
enum RadosMetrics {
    static let durations = MetricFamily<Timer>.timers("mediagw_rados_operation_duration_seconds", labels: ["operation"])
    static let errors = MetricFamily<Counter>.counters("mediagw_rados_operation_errors_total", labels: ["operation", "errno"])

    static func record(_ operation: String, since started: ContinuousClock.Instant, rc: Int32) {
        let elapsed = ContinuousClock.now - started
        let nanoseconds = elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
        durations(operation).recordNanoseconds(nanoseconds)
        if rc < 0 && rc != -ENOENT && rc != -ENODATA {
            errors(operation, "\(-rc)").increment()
        }
    }
}
