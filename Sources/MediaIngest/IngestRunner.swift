import Crypto
import Foundation
import Logging
import MediaCore
import NIOCore
import Synchronization
import Tracing

/// How an ingest runs.
public struct IngestOptions: Sendable {
    /// Files in flight at once.
    public var jobs: Int
    /// Report what would happen; store nothing.
    public var dryRun: Bool
    /// Bytes per read of a source file: 1 MiB, so that a photo is one read (each chunk is a hop to NIO's
    /// thread pool; 256 KiB reads cost the ingest process about 5 % more CPU in `mediagw-bench ingest`).
    public var chunkSize: Int

    public init(jobs: Int = IngestOptions.defaultJobs, dryRun: Bool = false, chunkSize: Int = 1 << 20) {
        self.jobs = jobs
        self.dryRun = dryRun
        self.chunkSize = chunkSize
    }

    /// Four files in flight per core: uploads mostly wait on Ceph and PostgreSQL, not on this machine.
    public static var defaultJobs: Int { max(4, ProcessInfo.processInfo.activeProcessorCount * 4) }
}

/// What became of one input file.
public enum IngestOutcome: String, Sendable, Codable, CaseIterable {
    case ingested
    /// Stored by an earlier run (same path, same content).
    case skipped
    /// Refused for good: the file or its row is not acceptable (its code says why).
    case refused
    /// Not stored because something failed; a re-run tries again.
    case failed
    /// `--dry-run`: would be stored.
    case wouldIngest = "would_ingest"
}

/// One line of the report.
public struct IngestResult: Sendable, Codable, Hashable {
    public var path: String
    public var outcome: IngestOutcome
    public var mediaID: String?
    public var sha256: String?
    public var size: Int64?
    public var code: String?
    public var message: String?
    /// The manifest line, for rows that could not be read.
    public var line: Int?

    enum CodingKeys: String, CodingKey {
        case path, outcome, sha256, size, code, message, line
        case mediaID = "media_id"
    }

    public init(
        path: String,
        outcome: IngestOutcome,
        mediaID: String? = nil,
        sha256: String? = nil,
        size: Int64? = nil,
        code: String? = nil,
        message: String? = nil,
        line: Int? = nil
    ) {
        self.path = path
        self.outcome = outcome
        self.mediaID = mediaID
        self.sha256 = sha256
        self.size = size
        self.code = code
        self.message = message
        self.line = line
    }
}

/// Counts so far, for the progress display and the summary.
public struct IngestProgress: Sendable {
    public var filesTotal = 0
    public var filesDone = 0
    public var bytesTotal: Int64 = 0
    public var bytesDone: Int64 = 0
    public var outcomes: [IngestOutcome: Int] = [:]
    /// Refusals and failures by code.
    public var reasons: [IngestOutcome: [String: Int]] = [:]
    public var started = ContinuousClock.now

    public subscript(_ outcome: IngestOutcome) -> Int { outcomes[outcome] ?? 0 }
    public var elapsed: Duration { ContinuousClock.now - started }
}

/// Ingests files into a target, `jobs` at a time, resumably: the journal says what earlier runs did, files
/// of one destination share an upload set that is committed once all its files are through, and every
/// file ends in one ``IngestResult``.
public final class IngestRunner<Target: IngestTarget>: Sendable {
    let target: Target
    let journal: IngestJournal
    let options: IngestOptions
    let logger: Logger
    let destinations: DestinationSets<Target>
    let counts = Mutex(IngestProgress())
    let onResult: @Sendable (IngestResult) -> Void

    /// - Parameter onResult: called once per input file as it completes (the report writer).
    public init(
        target: Target,
        journal: IngestJournal,
        options: IngestOptions,
        logger: Logger,
        onResult: @escaping @Sendable (IngestResult) -> Void
    ) {
        self.target = target
        self.journal = journal
        self.options = options
        self.logger = logger
        self.destinations = DestinationSets(target: target, journal: journal, logger: logger)
        self.onResult = onResult
    }

    /// The counts so far.
    public var progress: IngestProgress { counts.withLock { $0 } }

    /// Ingests `items` (and reports `rowErrors` as refused); returns the final counts.
    public func run(_ items: [IngestItem], rowErrors: [ManifestRowError] = []) async -> IngestProgress {
        // one destination's files next to each other, so that its set is committed early
        var order: [String: Int] = [:]
        for item in items where order[item.destination.key] == nil { order[item.destination.key] = order.count }
        let sorted = items.enumerated().sorted { (order[$0.element.destination.key]!, $0.offset) < (order[$1.element.destination.key]!, $1.offset) }
            .map(\.element)
        let sizes = await LocalFiles.regularFileSizes(of: sorted.map(\.path))
        counts.withLock {
            $0 = IngestProgress()
            $0.filesTotal = sorted.count + rowErrors.count
            $0.bytesTotal = sizes.reduce(0) { $0 + ($1 ?? 0) }
        }
        await destinations.expect(sorted.map(\.destination.key))
        for error in rowErrors {
            complete(
                IngestResult(path: error.path, outcome: .refused, code: "invalid_manifest_row", message: error.message, line: error.line),
                bytes: 0
            )
        }

        let next = NextIndex()
        let dryRun = options.dryRun
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, options.jobs) {
                group.addTask {
                    while true {
                        let index = next.take()
                        guard index < sorted.count else { return }
                        let item = sorted[index]
                        let result = await self.ingest(item, size: sizes[index])
                        self.complete(result, bytes: sizes[index] ?? 0)
                        if let failure = await self.destinations.finish(item.destination.key, dryRun: dryRun) {
                            self.logger.warning(
                                "an upload set could not be committed",
                                metadata: ["ingest.destination": "\(item.destination.key)", "error": "\(failure)"]
                            )
                            self.complete(
                                IngestResult(
                                    path: item.path,
                                    outcome: .failed,
                                    code: failure.code.rawValue,
                                    message: "the upload set of this destination could not be committed: \(failure.message)"
                                ),
                                bytes: 0,
                                counted: false
                            )
                        }
                    }
                }
            }
        }
        return progress
    }

    private func complete(_ result: IngestResult, bytes: Int64, counted: Bool = true) {
        counts.withLock {
            if counted {
                $0.filesDone += 1
                $0.bytesDone += bytes
            }
            $0.outcomes[result.outcome, default: 0] += 1
            if let code = result.code, result.outcome == .refused || result.outcome == .failed {
                $0.reasons[result.outcome, default: [:]][code, default: 0] += 1
            }
        }
        onResult(result)
    }

    /// Ingests one file in a span of its own (a trace per file: a run of a million files is no one trace).
    func ingest(_ item: IngestItem, size: Int64?) async -> IngestResult {
        await withSpan("ingest file", context: .topLevel) { span in
            span.attributes["ingest.path"] = item.path
            span.attributes["ingest.destination"] = item.destination.key
            let result = await ingestUntraced(item, size: size)
            span.attributes["ingest.outcome"] = result.outcome.rawValue
            if let mediaID = result.mediaID { span.attributes["media.id"] = mediaID }
            if let code = result.code, result.outcome == .failed { span.setStatus(SpanStatus(code: .error, message: code)) }
            return result
        }
    }

    private func ingestUntraced(_ item: IngestItem, size: Int64?) async -> IngestResult {
        let path = item.path
        guard let size else {
            return IngestResult(path: path, outcome: .refused, code: "file_not_found", message: "no readable file at this path")
        }
        // The content hash is taken before the upload only when it decides something: a file that an earlier
        // run recorded (skip it if unchanged), or a resumed set holding media no journaled file accounts for
        // (the file may be one of them). Otherwise the upload's own hash is the file's.
        var sha256: String? = nil
        func hashed() async throws -> String {
            if let sha256 { return sha256 }
            let value = try await Self.hash(path, chunkSize: options.chunkSize)
            sha256 = value
            return value
        }
        let (done, refusal) = await journal.recorded(at: path)
        do {
            if done != nil || refusal != nil || options.dryRun { _ = try await hashed() }
        } catch {
            return IngestResult(path: path, outcome: .refused, size: size, code: "file_unreadable", message: "the file cannot be read: \(error)")
        }
        if let done, done.sha256 == sha256 {
            return IngestResult(path: path, outcome: .skipped, mediaID: done.mediaID, sha256: sha256, size: size)
        }
        if let refusal, refusal.sha256 == sha256 {
            return IngestResult(path: path, outcome: .refused, sha256: sha256, size: size, code: refusal.code, message: refusal.message)
        }
        if options.dryRun {
            return IngestResult(path: path, outcome: .wouldIngest, sha256: sha256, size: size)
        }
        var attempt = 0
        while true {
            attempt += 1
            do {
                let set = try await destinations.set(for: item.destination)
                // stored just before an earlier run died, not yet in the journal: recognised by content
                if await destinations.hasUnclaimed(in: item.destination.key),
                    let mediaID = await destinations.claim(try await hashed(), in: item.destination.key)
                {
                    await destinations.stored(in: set)
                    try await journal.recordDone(path: path, sha256: try await hashed(), mediaID: mediaID)
                    return IngestResult(path: path, outcome: .ingested, mediaID: mediaID, sha256: sha256, size: size)
                }
                let chunkSize = options.chunkSize
                let stored = try await self.target.upload(
                    FileChunks(path: path, chunkSize: chunkSize),
                    size: size,
                    filename: (path as NSString).lastPathComponent,
                    into: set
                )
                await destinations.stored(in: set)
                try await journal.recordDone(path: path, sha256: stored.sha256, mediaID: stored.mediaID)
                return IngestResult(path: path, outcome: .ingested, mediaID: stored.mediaID, sha256: stored.sha256, size: size)
            } catch let error as MediaError where Self.setIsGone(error.code) && attempt == 1 {
                // the set expired or was committed elsewhere since it was opened: open another, once
                let set = try? await destinations.set(for: item.destination)
                if let set { await destinations.retire(set, of: item.destination.key) }
                continue
            } catch let error as MediaError where error.code.refusesFile {
                // a refusal is final for this content: recorded with its hash, taken now if need be
                if let sha = try? await hashed() {
                    try? await journal.recordRefused(path: path, sha256: sha, code: error.code.rawValue, message: error.message)
                }
                return IngestResult(path: path, outcome: .refused, sha256: sha256, size: size, code: error.code.rawValue, message: error.message)
            } catch let error as MediaError {
                return IngestResult(path: path, outcome: .failed, sha256: sha256, size: size, code: error.code.rawValue, message: error.message)
            } catch {
                return IngestResult(path: path, outcome: .failed, sha256: sha256, size: size, code: "io_error", message: "\(error)")
            }
        }
    }

    static func setIsGone(_ code: MediaError.Code) -> Bool {
        code == .setExpired || code == .setCommitted || code == .notFound || code == .tokenExpired
    }

    /// Lowercase hex SHA-256 of a file, streamed.
    public static func hash(_ path: String, chunkSize: Int) async throws -> String {
        var hasher = SHA256()
        for try await chunk in FileChunks(path: path, chunkSize: chunkSize) {
            chunk.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
        }
        return hasher.finalize().hexEncoded
    }
}

/// The next item to take, shared by the workers.
final class NextIndex: Sendable {
    private let value = Mutex(0)

    func take() -> Int {
        value.withLock { value in
            defer { value += 1 }
            return value
        }
    }
}

/// The upload set of each destination: resumed from the journal when an earlier run left one open,
/// opened once otherwise (never twice for concurrent files), and committed when its last file is through.
actor DestinationSets<Target: IngestTarget> {
    struct Opened {
        var set: IngestSet
        /// Media ids by content hash that no journaled file accounts for (stored just before a crash).
        var unclaimed: [String: [String]]
    }

    let target: Target
    let journal: IngestJournal
    let logger: Logger
    private var remaining: [String: Int] = [:]
    private var opening: [String: Task<Opened, any Error>] = [:]
    private var unclaimed: [String: [String: [String]]] = [:]
    /// Sets that received a file in this run (their commit needs no look first).
    private var received: Set<String> = []

    init(target: Target, journal: IngestJournal, logger: Logger) {
        self.target = target
        self.journal = journal
        self.logger = logger
    }

    func expect(_ keys: [String]) {
        for key in keys { remaining[key, default: 0] += 1 }
    }

    /// The destination's set, resumed or opened on first use.
    func set(for destination: IngestDestination) async throws -> IngestSet {
        let key = destination.key
        let task: Task<Opened, any Error>
        if let existing = opening[key] {
            task = existing
        } else {
            task = Task { [target, journal, logger] in
                let earlierSets = await journal.sets(of: key)
                // built only when a set is resumed: for each of thousands of new destinations it would cost
                // a pass over every file done so far
                let journaled = earlierSets.isEmpty ? [] : Set(await journal.done.values.map(\.mediaID))
                for earlier in earlierSets.reversed() {
                    guard let state = try await target.state(of: earlier), state.acceptsUploads else { continue }
                    logger.debug("resuming an upload set", metadata: ["upload_set.id": "\(earlier.id)"])
                    return Opened(set: earlier, unclaimed: state.mediaByHash.mapValues { $0.filter { !journaled.contains($0) } })
                }
                let set = try await target.openSet(for: destination)
                try await journal.recordSet(set, for: key)
                return Opened(set: set, unclaimed: [:])
            }
            opening[key] = task
        }
        do {
            let opened = try await task.value
            if unclaimed[key] == nil { unclaimed[key] = opened.unclaimed }
            return opened.set
        } catch {
            if opening[key] == task { opening[key] = nil }
            throw error
        }
    }

    /// A file went into `set` in this run.
    func stored(in set: IngestSet) {
        received.insert(set.id)
    }

    /// Whether the destination's set holds media that no journaled file accounts for.
    func hasUnclaimed(in key: String) -> Bool {
        unclaimed[key]?.values.contains { !$0.isEmpty } ?? false
    }

    /// A media id already stored in the destination's set with this content, taken at most once.
    func claim(_ sha256: String, in key: String) -> String? {
        guard var ids = unclaimed[key]?[sha256], !ids.isEmpty else { return nil }
        let id = ids.removeFirst()
        unclaimed[key]?[sha256] = ids
        return id
    }

    /// Forgets a set that no longer takes uploads, so that the next file opens a new one.
    func retire(_ set: IngestSet, of key: String) async {
        if let task = opening[key], (try? await task.value)?.set == set {
            opening[key] = nil
            unclaimed[key] = nil
        }
    }

    /// One file of `key` is through; after the last, commits the destination's sets that hold what this and
    /// earlier runs stored. Returns the commit's error, if any.
    func finish(_ key: String, dryRun: Bool) async -> MediaError? {
        remaining[key, default: 1] -= 1
        guard remaining[key] == 0, !dryRun else { return nil }
        let current = try? await opening[key]?.value.set
        for set in await journal.uncommittedSets(of: key) {
            do {
                // a set that received nothing (all its files refused) is left to expire as a draft
                if !received.contains(set.id), let state = try await target.state(of: set), state.mediaByHash.isEmpty && !state.isCommitted {
                    continue
                }
                try await target.commit(set)
                try await journal.recordCommitted(set)
            } catch let error as MediaError where error.code == .setCommitted {
                try? await journal.recordCommitted(set)
            } catch let error as MediaError where set != current && (error.code == .setExpired || error.code == .notFound) {
                // an older set, replaced when it stopped taking uploads
                logger.info("an earlier upload set had expired", metadata: ["upload_set.id": "\(set.id)"])
            } catch let error as MediaError {
                return error
            } catch {
                return MediaError(.internal, "\(error)")
            }
        }
        return nil
    }
}
