import NIOCore

/// Gathers the pieces of a byte stream into chunks of `size` bytes by reference: each piece is sliced,
/// never copied, and a chunk is the list of its slices. Used by both streamed writes (the pipelined one and
/// the one that lands each chunk before the next).
struct ChunkGatherer {
    /// The bytes of a full chunk.
    let size: Int
    /// The slices of the chunk being gathered.
    private(set) var pieces: [ByteBuffer] = []
    /// The bytes gathered so far, at most `size`.
    private(set) var count = 0

    init(size: Int) {
        precondition(size > 0, "a chunk holds at least one byte")
        self.size = size
    }

    /// Takes as much of `piece` as the chunk has room for; `true` once the chunk is full (what is left of
    /// `piece` belongs to the next chunk, after `take()`).
    mutating func fill(from piece: inout ByteBuffer) -> Bool {
        let slice = piece.readSlice(length: min(piece.readableBytes, size - count))!
        if slice.readableBytes > 0 {
            pieces.append(slice)
            count += slice.readableBytes
        }
        return count == size
    }

    /// The chunk gathered so far; the gatherer starts the next one.
    mutating func take() -> (pieces: [ByteBuffer], count: Int) {
        defer {
            pieces = []
            count = 0
        }
        return (pieces, count)
    }
}
