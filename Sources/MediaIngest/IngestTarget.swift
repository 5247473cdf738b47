import Foundation
import NIOCore
import Synchronization

/// Where one file to ingest goes: its owner and the context (post, profile, community, message) it belongs to.
public struct IngestDestination: Sendable, Hashable, Codable {
    public var ownerID: String
    public var context: UploadContext
    public var contextID: String
    public var isPrivate: Bool

    public init(ownerID: String, context: UploadContext, contextID: String, isPrivate: Bool = false) {
        self.ownerID = ownerID
        self.context = context
        self.contextID = contextID
        self.isPrivate = isPrivate
    }

    /// A stable text key: the files of one destination go into one upload set, under that context's limits.
    public var key: String { "\(ownerID)|\(context.rawValue)|\(contextID)|\(isPrivate ? "private" : "public")" }
}

/// One file to ingest.
public struct IngestItem: Sendable, Hashable {
    /// The path as the operator wrote it (manifest) or found it (directory), relative or absolute.
    public var path: String
    public var destination: IngestDestination

    public init(path: String, destination: IngestDestination) {
        self.path = path
        self.destination = destination
    }
}

/// A manifest row that cannot be ingested, reported and skipped.
public struct ManifestRowError: Sendable, Hashable, Error {
    /// 1-based line number in the manifest.
    public var line: Int
    /// The row's path when it could be read, else the raw line.
    public var path: String
    public var message: String
}

/// Reads ingest manifests: CSV with a header (`path,owner_id,context,context_id[,private]`) or JSON Lines
/// (one object per line with the same keys). Bad rows are returned beside the good ones, never fatal.
public enum IngestManifest {
    public enum Format: Sendable { case csv, jsonLines }

    /// The format by the file's extension: `.csv`, or `.jsonl`/`.ndjson`.
    public static func format(ofPath path: String) -> Format? {
        switch (path as NSString).pathExtension.lowercased() {
        case "csv": .csv
        case "jsonl", "ndjson": .jsonLines
        default: nil
        }
    }

    /// Parses a manifest's text. Throws only when the whole file is unusable (a CSV header without the
    /// required columns); every other problem is one ``ManifestRowError``.
    public static func parse(_ text: String, format: Format) throws(MediaError) -> (items: [IngestItem], errors: [ManifestRowError]) {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
        var items: [IngestItem] = []
        var errors: [ManifestRowError] = []
        switch format {
        case .csv:
            guard let headerIndex = lines.firstIndex(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) else { return ([], []) }
            let header = splitCSV(lines[headerIndex]).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            let missing = ["path", "owner_id", "context", "context_id"].filter { !header.contains($0) }
            guard missing.isEmpty else {
                throw MediaError(.invalidRequest, "the CSV header lacks \(missing.joined(separator: ", ")) (expected path,owner_id,context,context_id[,private])")
            }
            for index in lines.indices where index > headerIndex && !lines[index].trimmingCharacters(in: .whitespaces).isEmpty {
                let cells = splitCSV(lines[index])
                var fields: [String: String] = [:]
                for (column, name) in header.enumerated() where column < cells.count { fields[name] = cells[column] }
                if cells.count > header.count {
                    errors.append(ManifestRowError(line: index + 1, path: fields["path"] ?? lines[index], message: "more cells than header columns"))
                    continue
                }
                append(fields, line: index + 1, raw: lines[index], to: &items, errors: &errors)
            }
        case .jsonLines:
            for (index, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                guard let object = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] else {
                    errors.append(ManifestRowError(line: index + 1, path: line, message: "not a JSON object"))
                    continue
                }
                var fields: [String: String] = [:]
                for (key, value) in object {
                    switch value {
                    case let text as String: fields[key] = text
                    case let flag as Bool: fields[key] = flag ? "true" : "false"
                    case let number as NSNumber: fields[key] = number.stringValue
                    default: fields[key] = "\(value)"
                    }
                }
                append(fields, line: index + 1, raw: line, to: &items, errors: &errors)
            }
        }
        return (items, errors)
    }

    private static func append(
        _ fields: [String: String], line: Int, raw: String, to items: inout [IngestItem], errors: inout [ManifestRowError]
    ) {
        let path = fields["path"]?.trimmingCharacters(in: .whitespaces) ?? ""
        func fail(_ message: String) { errors.append(ManifestRowError(line: line, path: path.isEmpty ? raw : path, message: message)) }
        guard !path.isEmpty else { return fail("path is empty") }
        let owner = fields["owner_id"]?.trimmingCharacters(in: .whitespaces) ?? ""
        let contextID = fields["context_id"]?.trimmingCharacters(in: .whitespaces) ?? ""
        guard let context = UploadContext(rawValue: fields["context"]?.trimmingCharacters(in: .whitespaces).lowercased() ?? "") else {
            return fail("context must be one of \(UploadContext.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        do {
            try ExternalID.validate(owner, name: "owner_id")
            try ExternalID.validate(contextID, name: "context_id")
        } catch {
            return fail(error.message)
        }
        let privateText = fields["private"]?.trimmingCharacters(in: .whitespaces).lowercased() ?? ""
        let isPrivate: Bool
        switch privateText {
        case "", "false", "0", "no": isPrivate = false
        case "true", "1", "yes": isPrivate = true
        default: return fail("private must be true or false")
        }
        items.append(IngestItem(path: path, destination: IngestDestination(ownerID: owner, context: context, contextID: contextID, isPrivate: isPrivate)))
    }

    /// Splits one CSV line (RFC 4180 quoting; a quoted cell may contain commas and doubled quotes).
    static func splitCSV(_ line: String) -> [String] {
        var cells: [String] = []
        var cell = ""
        var quoted = false
        var iterator = Array(line).makeIterator()
        var pending: Character? = nil
        while let character = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if character == "\"" {
                    let next = iterator.next()
                    if next == "\"" { cell.append("\"") } else { quoted = false; pending = next }
                } else {
                    cell.append(character)
                }
            } else if character == "\"" && cell.isEmpty {
                quoted = true
            } else if character == "," {
                cells.append(cell)
                cell = ""
            } else {
                cell.append(character)
            }
        }
        cells.append(cell)
        return cells
    }
}

/// An upload set opened for ingesting, as the target knows it.
public struct IngestSet: Sendable, Hashable, Codable {
    public var id: String
    /// The set's upload token, for targets that upload through the public API.
    public var token: String?
    /// When that token stops being accepted.
    public var tokenExpiresAt: Date?

    public init(id: String, token: String?, tokenExpiresAt: Date? = nil) {
        self.id = id
        self.token = token
        self.tokenExpiresAt = tokenExpiresAt
    }
}

/// What a target knows of a set when a run resumes: whether it still takes uploads, and the content hashes
/// of the media already in it (so that a file stored just before a crash is recognised, not stored again).
public struct IngestSetState: Sendable, Hashable {
    public var acceptsUploads: Bool
    public var isCommitted: Bool
    /// Media id by content hash (lowercase hex SHA-256), live media only.
    public var mediaByHash: [String: [String]]

    public init(acceptsUploads: Bool, isCommitted: Bool, mediaByHash: [String: [String]]) {
        self.acceptsUploads = acceptsUploads
        self.isCommitted = isCommitted
        self.mediaByHash = mediaByHash
    }
}

/// A file stored by a target.
public struct IngestedFile: Sendable, Hashable {
    public var mediaID: String
    /// Lowercase hex SHA-256 of the stored bytes.
    public var sha256: String

    public init(mediaID: String, sha256: String) {
        self.mediaID = mediaID
        self.sha256 = sha256
    }
}

/// Where ingested files go: the upload use cases directly, or a running gateway over HTTP. Both apply the
/// same rules, because both end in ``UploadService``. Errors are ``MediaError``s.
public protocol IngestTarget: Sendable {
    /// Opens a draft set for one destination.
    func openSet(for destination: IngestDestination) async throws -> IngestSet
    /// The state of a set opened by an earlier run; nil when it no longer exists.
    func state(of set: IngestSet) async throws -> IngestSetState?
    /// Stores one file, streamed from `chunks`, and returns the new media item's id and content hash.
    func upload<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, size: Int64, filename: String, into set: IngestSet) async throws -> IngestedFile
    where Chunks.Element == ByteBuffer
    /// Publishes the set, so that its media outlive the draft lifetime.
    func commit(_ set: IngestSet) async throws
}

extension MediaError.Code {
    /// Whether an ingest that ended with this error is final for its file (the file itself, or where it
    /// was to go, is refused) rather than a failure worth retrying on the next run.
    public var refusesFile: Bool {
        switch self {
        case .invalidRequest, .unsupportedMediaType, .tooLarge, .requestTooLarge, .limitExceeded, .malformedMultipart: true
        default: false
        }
    }
}

/// Ingests straight through the use cases (``MediaService`` opens and commits sets, ``UploadService``
/// stores the files): the same rules as the HTTP API, without HTTP.
public struct DirectIngestTarget<Metadata: MetadataStore, Objects: ObjectStore>: IngestTarget {
    public let media: MediaService<Metadata, Objects>
    public let uploads: UploadService<Metadata, Objects>
    /// Sets opened by this target: an upload into one of them needs no read of it first (the count limit is
    /// enforced where it counts, under the set's lock when the row is recorded).
    private let opened = OpenedSets()

    public init(media: MediaService<Metadata, Objects>, uploads: UploadService<Metadata, Objects>) {
        self.media = media
        self.uploads = uploads
    }

    public func openSet(for destination: IngestDestination) async throws -> IngestSet {
        let opened = try await media.openUploadSet(
            ownerID: destination.ownerID, context: destination.context, contextID: destination.contextID, isPrivate: destination.isPrivate)
        self.opened.remember(opened.set)
        return IngestSet(id: opened.set.id.description, token: nil)
    }

    public func state(of set: IngestSet) async throws -> IngestSetState? {
        guard let id = UploadSetID(set.id) else { return nil }
        let found: (UploadSet, [Media])
        do {
            found = try await media.uploadSet(id)
        } catch let error as MediaError where error.code == .notFound {
            return nil
        }
        let (uploadSet, items) = found
        var byHash: [String: [String]] = [:]
        for item in items where item.state != .deleted { byHash[item.sha256, default: []].append(item.id.description) }
        return IngestSetState(
            acceptsUploads: uploadSet.state == .draft && uploadSet.expiresAt > Date().addingTimeInterval(60),
            isCommitted: uploadSet.state == .committed, mediaByHash: byHash)
    }

    public func upload<Chunks: AsyncSequence & Sendable>(_ chunks: Chunks, size: Int64, filename: String, into set: IngestSet) async throws -> IngestedFile
    where Chunks.Element == ByteBuffer {
        guard let id = UploadSetID(set.id) else { throw MediaError(.notFound, "no upload set \(set.id)") }
        let uploadSet: UploadSet
        if let known = opened.set(id) {
            uploadSet = known
        } else {
            uploadSet = try await media.uploadSet(id).0
        }
        try UploadService<Metadata, Objects>.checkAcceptsUploads(uploadSet, now: Date())
        let stored = try await uploads.storeOriginal(chunks, into: uploadSet)
        return IngestedFile(mediaID: stored.id.description, sha256: stored.sha256)
    }

    public func commit(_ set: IngestSet) async throws {
        guard let id = UploadSetID(set.id) else { throw MediaError(.notFound, "no upload set \(set.id)") }
        _ = try await media.commitUploadSet(id)
    }
}

/// Upload sets a direct ingest opened, by id.
final class OpenedSets: Sendable {
    private let sets = Mutex<[UploadSetID: UploadSet]>([:])

    func remember(_ set: UploadSet) {
        sets.withLock { $0[set.id] = set }
    }

    func set(_ id: UploadSetID) -> UploadSet? {
        sets.withLock { $0[id] }
    }
}
