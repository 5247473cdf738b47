import Foundation
import NIOCore
import Testing

@testable import MediaIngest

@Suite struct LocalFilesTests {
    /// A directory of its own under the temporary directory, removed afterwards.
    private func withDirectory(_ body: (URL) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mediagw-localfiles-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await body(directory)
    }

    private func chunks(of path: String, chunkSize: Int) async throws -> [ByteBuffer] {
        var chunks: [ByteBuffer] = []
        for try await chunk in FileChunks(path: path, chunkSize: chunkSize) { chunks.append(chunk) }
        return chunks
    }

    @Test(arguments: [0, 1, 4095, 4096, 4097, 3 * 4096 + 5])
    func aFileIsReadWholeInChunksOfTheSizeAskedThenItsRest(length: Int) async throws {
        try await withDirectory { directory in
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            let path = directory.appendingPathComponent("file").path
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            let chunks = try await chunks(of: path, chunkSize: 4096)
            #expect(chunks.flatMap { Array($0.readableBytesView) } == bytes)
            #expect(chunks.count == (length + 4095) / 4096)
            #expect(chunks.dropLast().allSatisfy { $0.readableBytes == 4096 })
        }
    }

    @Test func aMissingFileFailsOnItsFirstChunk() async throws {
        try await withDirectory { directory in
            let path = directory.appendingPathComponent("absent").path
            await #expect(throws: IOError.self) { _ = try await chunks(of: path, chunkSize: 4096) }
        }
    }

    /// The descriptors of this process open on `path`.
    private func descriptors(openOn path: String) throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").filter {
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)")) == path
        }.count
    }

    @Test func aFileIsClosedAtItsEndAndWhenLeftBeforeIt() async throws {
        try await withDirectory { directory in
            let path = directory.appendingPathComponent("file").path
            try Data(count: 3 * 4096).write(to: URL(fileURLWithPath: path))
            do {
                var iterator = FileChunks(path: path, chunkSize: 4096).makeAsyncIterator()
                _ = try await iterator.next()
                let open = try withExtendedLifetime(iterator) { try descriptors(openOn: path) }
                #expect(open == 1)
            }
            #expect(try descriptors(openOn: path) == 0)
            _ = try await chunks(of: path, chunkSize: 1 << 20)
            #expect(try descriptors(openOn: path) == 0)
        }
    }

    @Test func sizesAreThoseOfRegularFilesThroughLinksAndNilForTheRest() async throws {
        try await withDirectory { directory in
            let file = directory.appendingPathComponent("file")
            try Data(count: 1234).write(to: file)
            let link = directory.appendingPathComponent("link")
            try FileManager.default.createSymbolicLink(at: link, withDestinationURL: file)
            let subdirectory = directory.appendingPathComponent("sub")
            try FileManager.default.createDirectory(at: subdirectory, withIntermediateDirectories: false)
            let paths = [file.path, link.path, subdirectory.path, directory.appendingPathComponent("absent").path]
            // more paths than one hop takes, so that the batches are put back together in order
            let many = Array(repeating: paths, count: 700).flatMap { $0 }
            let sizes = await LocalFiles.regularFileSizes(of: many)
            #expect(sizes.count == many.count)
            #expect(sizes == Array(repeating: [1234, 1234, nil, nil] as [Int64?], count: 700).flatMap { $0 })
        }
    }
}
