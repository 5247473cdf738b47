import NIOCore
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The bytes of a file in chunks of `chunkSize`, each read by one task on NIO's blocking thread pool.
///
/// The open, the reads of a chunk and, once the end is reached, the close happen in the same task: a file that
/// fits one chunk (a photo, at 1 MiB) costs one hop to the thread pool and back, where a file handle that opens,
/// reads, finds the end and closes in turn costs four. Iterate it once; a file left before its end is closed when
/// its iterator goes away.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let path: String
    let chunkSize: Int
    let threadPool: NIOThreadPool

    init(path: String, chunkSize: Int, threadPool: NIOThreadPool = .singleton) {
        precondition(chunkSize > 0, "a chunk holds at least one byte")
        self.path = path
        self.chunkSize = chunkSize
        self.threadPool = threadPool
    }

    func makeAsyncIterator() -> Iterator {
        Iterator(reader: Reader(path: path, chunkSize: chunkSize), threadPool: threadPool)
    }

    struct Iterator: AsyncIteratorProtocol {
        let reader: Reader
        let threadPool: NIOThreadPool

        mutating func next() async throws -> ByteBuffer? {
            let reader = self.reader
            return try await threadPool.runIfActive { try reader.readChunk() }
        }
    }

    /// The open file of one iteration. Its state is only touched from one task at a time (an iterator is not
    /// used concurrently), under a lock all the same.
    final class Reader: Sendable {
        private struct State {
            var descriptor: CInt = -1
            var finished = false
        }

        private let path: String
        private let chunkSize: Int
        private let state = Mutex(State())

        init(path: String, chunkSize: Int) {
            self.path = path
            self.chunkSize = chunkSize
        }

        deinit {
            state.withLock { state in
                if state.descriptor >= 0 { _ = close(state.descriptor) }
            }
        }

        /// The next chunk, or `nil` at the end. Blocking: runs on the thread pool.
        func readChunk() throws -> ByteBuffer? {
            try state.withLock { state in
                if state.finished { return nil }
                if state.descriptor < 0 {
                    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
                    guard descriptor >= 0 else {
                        state.finished = true
                        throw IOError(errnoCode: errno, reason: "open")
                    }
                    state.descriptor = descriptor
                }
                var buffer = ByteBufferAllocator().buffer(capacity: chunkSize)
                var reachedEnd = false
                while buffer.readableBytes < chunkSize {
                    let wanted = chunkSize - buffer.readableBytes
                    let count = try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { bytes in
                        while true {
                            let count = read(state.descriptor, bytes.baseAddress, wanted)
                            if count >= 0 { return count }
                            if errno != EINTR { throw IOError(errnoCode: errno, reason: "read") }
                        }
                    }
                    if count == 0 {
                        reachedEnd = true
                        break
                    }
                }
                if reachedEnd {
                    _ = close(state.descriptor)
                    state.descriptor = -1
                    state.finished = true
                }
                return buffer.readableBytes > 0 ? buffer : nil
            }
        }
    }
}

/// Sizes of local files, asked of the file system on NIO's blocking thread pool.
enum LocalFiles {
    /// The size of each path that is a regular file (after following symbolic links), `nil` for any other.
    /// Many paths per hop to the thread pool (a directory of a million files is not a million hops).
    static func regularFileSizes(of paths: [String], threadPool: NIOThreadPool = .singleton) async -> [Int64?] {
        var sizes: [Int64?] = []
        sizes.reserveCapacity(paths.count)
        var start = paths.startIndex
        while start < paths.endIndex {
            let batch = Array(paths[start..<min(start + 1024, paths.endIndex)])
            let found = try? await threadPool.runIfActive {
                batch.map { path -> Int64? in
                    var info = stat()
                    guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { return nil }
                    return Int64(info.st_size)
                }
            }
            sizes.append(contentsOf: found ?? Array(repeating: nil, count: batch.count))
            start += batch.count
        }
        return sizes
    }
}
