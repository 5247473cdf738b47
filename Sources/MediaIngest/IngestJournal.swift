import Foundation
import MediaConcurrency
import MediaCore

/// The durable state of an ingest, a JSON Lines file appended to (and flushed to disk) as the run goes:
/// the sets opened for each destination, the files stored (path, content hash, media id), the files
/// refused for good, and the sets committed. A re-run of the same command reads it back and skips what
/// is done; a line torn by a crash is ignored.
///
/// Only the records that a crash must not lose wait for their flush: a file stored or refused. A set's
/// record is written before anything is uploaded into it and is on disk once any of its files' records
/// is (the file is flushed in order); a set whose record was lost held no recorded file, so the re-run
/// opens another and the lost one expires as a draft. A lost `committed` record makes the re-run commit
/// the set again, which finds it committed.
public actor IngestJournal {
    public struct Done: Sendable, Hashable {
        public var sha256: String
        public var mediaID: String
    }

    public struct Refusal: Sendable, Hashable {
        public var sha256: String
        public var code: String
        public var message: String
    }

    struct Record: Codable {
        var type: String
        var path: String?
        var sha256: String?
        var destination: String?
        var set: IngestSet?
        var media: String?
        var code: String?
        var message: String?
    }

    public let path: String
    private let handle: FileHandle
    private let encoder = JSONEncoder()
    /// Where the journal's `fsync`s run, one after the other.
    private let flusher = BlockingLane(label: "mediagw.ingest.journal")
    /// Stored files by path.
    public private(set) var done: [String: Done] = [:]
    /// Files refused for good, by path.
    public private(set) var refused: [String: Refusal] = [:]
    /// Sets opened for each destination key, oldest first.
    public private(set) var sets: [String: [IngestSet]] = [:]
    /// Committed set ids.
    public private(set) var committed: Set<String> = []

    /// Opens (creating if needed) the journal at `path` and reads what earlier runs recorded.
    public init(path: String) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil) else {
                throw MediaError(.invalidRequest, "cannot create the state file \(path)")
            }
        }
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        let decoder = JSONDecoder()
        for line in text.split(separator: "\n") {
            guard let record = try? decoder.decode(Record.self, from: Data(line.utf8)) else { continue }
            switch record.type {
            case "set":
                if let destination = record.destination, let set = record.set { sets[destination, default: []].append(set) }
            case "done":
                if let path = record.path, let sha = record.sha256, let media = record.media {
                    done[path] = Done(sha256: sha, mediaID: media)
                    refused[path] = nil
                }
            case "refused":
                if let path = record.path, let sha = record.sha256 {
                    refused[path] = Refusal(sha256: sha, code: record.code ?? "refused", message: record.message ?? "")
                }
            case "committed":
                if let id = record.set?.id { committed.insert(id) }
            default: continue
            }
        }
        guard let handle = FileHandle(forUpdatingAtPath: path) else {
            throw MediaError(.invalidRequest, "cannot write the state file \(path)")
        }
        self.handle = handle
        handle.seekToEndOfFile()
    }

    /// Callers waiting for the flush after the one in progress.
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var flushing = false
    /// Records written since the last flush began, which no flush has covered yet.
    private var unflushed = false

    /// Writes a record; when `durable`, returns once it is on disk. Records of concurrent files share
    /// their flushes (one `fsync` for all that were written before it).
    private func append(_ record: Record, durable: Bool) async throws {
        var line = try encoder.encode(record)
        line.append(0x0A)
        handle.write(line)
        unflushed = true
        if durable { await flushed() }
    }

    /// Returns once every record written so far is on disk.
    private func flushed() async {
        await withCheckedContinuation { continuation in
            waiting.append(continuation)
            if !flushing { flush() }
        }
    }

    private func flush() {
        flushing = true
        unflushed = false
        let batch = waiting
        waiting = []
        let descriptor = handle.fileDescriptor
        let flusher = flusher
        // off the actor, so that other files' records are written meanwhile (and join the next flush)
        Task {
            _ = await flusher.run { fsync(descriptor) }
            await self.resume(batch)
        }
    }

    private func resume(_ batch: [CheckedContinuation<Void, Never>]) {
        for continuation in batch { continuation.resume() }
        flushing = false
        if !waiting.isEmpty { flush() }
    }

    /// Records a set opened for a destination, before anything is uploaded into it; does not wait for
    /// the disk (see the type's note).
    public func recordSet(_ set: IngestSet, for destination: String) async throws {
        sets[destination, default: []].append(set)
        try await append(Record(type: "set", destination: destination, set: set), durable: false)
    }

    /// Records a stored file; returns once the record is on disk, so it is always before its set's commit.
    public func recordDone(path: String, sha256: String, mediaID: String) async throws {
        done[path] = Done(sha256: sha256, mediaID: mediaID)
        refused[path] = nil
        try await append(Record(type: "done", path: path, sha256: sha256, media: mediaID), durable: true)
    }

    /// Records a file refused for good; returns once the record is on disk.
    public func recordRefused(path: String, sha256: String, code: String, message: String) async throws {
        refused[path] = Refusal(sha256: sha256, code: code, message: message)
        try await append(Record(type: "refused", path: path, sha256: sha256, code: code, message: message), durable: true)
    }

    /// Records a committed set; does not wait for the disk (see the type's note).
    public func recordCommitted(_ set: IngestSet) async throws {
        committed.insert(set.id)
        try await append(Record(type: "committed", set: IngestSet(id: set.id, token: nil)), durable: false)
    }

    /// What an earlier run (or this one) recorded for the file at `path`.
    public func recorded(at path: String) -> (done: Done?, refused: Refusal?) {
        (done[path], refused[path])
    }

    /// The sets opened for a destination, oldest first.
    public func sets(of destination: String) -> [IngestSet] {
        sets[destination] ?? []
    }

    /// The destination's sets, oldest first, that are not recorded as committed.
    public func uncommittedSets(of destination: String) -> [IngestSet] {
        (sets[destination] ?? []).filter { !committed.contains($0.id) }
    }

    /// Flushes what is not yet on disk, then closes the file.
    public func close() async {
        if unflushed || flushing { await flushed() }
        try? handle.close()
    }
}
