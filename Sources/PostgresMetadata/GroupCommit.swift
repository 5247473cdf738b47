import Foundation
import Logging
import MediaConcurrency
import MediaCore
import Metrics
import PostgresNIO

/// Group commit of the write path: sets opened, uploads recorded and sets committed while other batches
/// of the same kind are in flight go together, each with its own outcome (a set over its limit refuses its
/// upload, the others in the batch are recorded): sets are opened, uploads recorded and sets committed by
/// one statement per batch. Fewer round trips and commits per file is what a
/// bulk ingest of thousands of small files needs, since its cost per file was mostly PostgreSQL's. A batch
/// of one runs as before, so a lone request waits for nothing.
///
/// A batch that fails as a whole (the database went away, a conflict that persists) fails each of its
/// items with that error, and nothing of it is written: what a crash leaves is what it left before
/// (objects without rows, found by the reconciler through the pending ledger).
public final class PostgresGroupCommit: Sendable {
    let sets: Batcher<NewUploadSet, UploadSet>
    let records: Batcher<UploadRecordRequest, Media>
    let commits: Batcher<UploadSetCommitRequest, UploadSet>

    /// - Parameters:
    ///   - store: runs the batches (a store without group commit of its own).
    ///   - maxBatch: the most sets opened or committed by one statement.
    ///   - maxRecords: the most uploads recorded by one statement.
    ///   - lanes: batches of one kind in flight at once (PostgreSQL flushes their commits together).
    public init(store: PostgresMetadataStore, maxBatch: Int = 64, maxRecords: Int = 64, lanes: Int = 4) {
        precondition(store.groupCommit == nil, "the batches run on a store without group commit")
        sets = Batcher(maxBatch: maxBatch, lanes: lanes) { batch in await store.createUploadSets(batch) }
        records = Batcher(maxBatch: maxRecords, lanes: lanes) { batch in await store.recordUploads(batch) }
        commits = Batcher(maxBatch: maxBatch, lanes: lanes) { batch in await store.commitUploadSets(batch) }
    }

    /// Uploads recorded so far, and the transactions that carried them.
    public var recorded: (transactions: Int, uploads: Int) {
        get async {
            let carried = await records.carried
            return (carried.batches, carried.items)
        }
    }
}

/// One upload to record, as ``PostgresMetadataStore/recordUpload(_:maxCount:now:)`` takes it.
struct UploadRecordRequest: Sendable {
    var media: NewMedia
    var maxCount: Int
    var now: Date

    var statement: RecordUploadStatement { RecordUploadStatement(media: media, maxCount: maxCount, now: now) }

    /// The recorded row, or why nothing was written.
    func media(from outcome: RecordUploadStatement.Outcome?) throws -> Media {
        guard let outcome else { throw MetadataStoreError(.notFound, "no upload set \(media.uploadSetID)") }
        if let recorded = outcome.media { return recorded }
        guard outcome.setOwner == media.ownerID else { throw MetadataStoreError(.conflict, "the media's owner does not own the set") }
        guard outcome.setState != UploadSetState.committed.rawValue else { throw MetadataStoreError(.setCommitted, "the set is committed") }
        guard outcome.setState == UploadSetState.draft.rawValue, outcome.setExpiresAt > now else {
            throw MetadataStoreError(.setExpired, "the set has expired")
        }
        throw MetadataStoreError(.limitExceeded, "the set already holds \(outcome.count) \(media.kind.rawValue) item(s)")
    }
}

/// One set to commit.
struct UploadSetCommitRequest: Sendable {
    var id: UploadSetID
    var now: Date
    /// The id of its `upload_set.committed` event, if this request is the one that commits it.
    var eventID = UUID.random()

    /// The committed set (committed now or before: commits are idempotent), or why it was not. A set
    /// committed by this request is linked to its event (`mediagw correlate`).
    func set(from answer: CommitUploadSetsStatement.Row?) throws -> UploadSet {
        guard let answer else { throw MetadataStoreError(.notFound, "no upload set \(id)") }
        var set = answer.found
        if let committedAt = answer.committedAt {
            set.state = .committed
            set.committedAt = committedAt
            Correlation.link(.set(id), .event(eventID), "upload_set.committed")
            return set
        }
        guard set.state == .committed else { throw MetadataStoreError(.setExpired, "the set has expired") }
        return set
    }
}

extension PostgresMetadataStore {
    /// Opens the sets in one statement.
    func createUploadSets(_ batch: [NewUploadSet]) async -> [Result<UploadSet, any Error>] {
        if batch.count == 1 { return [await Self.result { try await createOneUploadSet(batch[0]) }] }
        GroupCommitMetrics.batchSize("create_upload_set").record(batch.count)
        do {
            let created = try await run("create_upload_sets") { [client, logger] in
                var created: [UploadSetID: UploadSet] = [:]
                for try await set in try await client.execute(CreateUploadSetsStatement(sets: batch), logger: logger) { created[set.id] = set }
                return created
            }
            return batch.map { new in
                created[new.id].map { .success($0) } ?? .failure(MetadataStoreError(.other, "create upload set: no row returned"))
            }
        } catch {
            return batch.map { _ in .failure(error) }
        }
    }

    /// Records the uploads in one statement, each as it would be alone.
    func recordUploads(_ batch: [UploadRecordRequest]) async -> [Result<Media, any Error>] {
        if batch.count == 1 { return [await Self.result { try await recordOneUpload(batch[0]) }] }
        GroupCommitMetrics.batchSize("record_upload").record(batch.count)
        do {
            let outcomes = try await run("record_uploads") { [client, logger] in
                var outcomes = [RecordUploadStatement.Outcome?](repeating: nil, count: batch.count)
                for try await row in try await client.execute(RecordUploadsStatement(requests: batch), logger: logger)
                where batch.indices.contains(row.index) {
                    outcomes[row.index] = row.outcome
                }
                return outcomes
            }
            return batch.indices.map { index in Result { try batch[index].media(from: outcomes[index]) } }
        } catch {
            return batch.map { _ in .failure(error) }
        }
    }

    /// Commits the sets in one statement, each as it would be alone (an unknown or expired set is refused
    /// without writing anything, the others are committed).
    func commitUploadSets(_ batch: [UploadSetCommitRequest]) async -> [Result<UploadSet, any Error>] {
        if batch.count == 1 { return [await Self.result { try await commitOneUploadSet(batch[0]) }] }
        GroupCommitMetrics.batchSize("commit_upload_set").record(batch.count)
        do {
            let answers = try await run("commit_upload_sets") { [client, logger] in
                var answers: [UploadSetID: CommitUploadSetsStatement.Row] = [:]
                for try await row in try await client.execute(CommitUploadSetsStatement(requests: batch), logger: logger) {
                    answers[row.found.id] = row
                }
                return answers
            }
            return batch.map { request in Result { try request.set(from: answers[request.id]) } }
        } catch {
            return batch.map { _ in .failure(error) }
        }
    }

    private static func result<Output>(_ body: () async throws -> Output) async -> Result<Output, any Error> {
        do {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }
}

/// Items per group-committed transaction, by operation, made once.
enum GroupCommitMetrics {
    static let batchSize = MetricFamily<Recorder>(labels: ["operation"]) { Recorder(label: "mediagw_postgres_batch_size", dimensions: $0) }
}
