import NIOCore
import Synchronization

/// SHA-256 whose state can be saved with an upload's progress and taken up again by any gateway. A file
/// received in pieces is then hashed once, as its bytes arrive, instead of being read back whole from the
/// store when its last piece comes.
public protocol ResumableSHA256: Sendable {
    /// The hash of no bytes.
    func start() -> any ResumableSHA256State
    /// The hash that `saved` holds, if it is a state this hashing saved after exactly `offset` bytes;
    /// `nil` otherwise (another format, damaged, or of another length).
    func resume(_ saved: [UInt8], at offset: Int64) -> (any ResumableSHA256State)?
}

/// A SHA-256 under way. A value: a copy goes on on its own.
public protocol ResumableSHA256State: Sendable {
    /// The bytes hashed so far.
    var byteCount: Int64 { get }
    mutating func update(_ bytes: UnsafeRawBufferPointer)
    /// The state, to be resumed by ``ResumableSHA256/resume(_:at:)``.
    func saved() -> [UInt8]
    /// The digest of the bytes hashed so far, as lowercase hex.
    func hexDigest() -> String
}

/// The hash of an upload's bytes as an append hands them to the store, able to give the state at any
/// offset the store reports as landed: the state before the last piece handed over is kept with that
/// piece, so that a store that lands a chunk in the middle of a piece costs hashing part of it again.
final class UploadHashTracker: Sendable {
    private struct State: Sendable {
        /// The hash the append started from.
        let first: any ResumableSHA256State
        /// The hash of every byte handed over.
        var current: any ResumableSHA256State
        /// The hash before the last piece, and that piece.
        var beforeLast: (any ResumableSHA256State)?
        var last: ByteBuffer?
    }

    private let state: Mutex<State>

    init(_ start: any ResumableSHA256State) {
        state = Mutex(State(first: start, current: start))
    }

    /// Counts `piece` in, as the next bytes handed to the store.
    func hand(_ piece: ByteBuffer) {
        state.withLock { state in
            state.beforeLast = state.current
            state.last = piece
            piece.withUnsafeReadableBytes { state.current.update($0) }
        }
    }

    /// The bytes handed over so far.
    var byteCount: Int64 { state.withLock { $0.current.byteCount } }

    /// The hash of the first `offset` bytes, when `offset` is where the append started or lies within or at
    /// the end of the last piece handed over; `nil` for another offset.
    func hash(at offset: Int64) -> (any ResumableSHA256State)? {
        state.withLock { state in
            if offset == state.current.byteCount { return state.current }
            if offset == state.first.byteCount { return state.first }
            guard var before = state.beforeLast, let last = state.last, offset >= before.byteCount,
                offset < before.byteCount + Int64(last.readableBytes)
            else { return nil }
            let needed = Int(offset - before.byteCount)
            last.withUnsafeReadableBytes { before.update(UnsafeRawBufferPointer(rebasing: $0.prefix(needed))) }
            return before
        }
    }
}
