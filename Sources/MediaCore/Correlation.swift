import Foundation
import Logging
import Metrics
import Synchronization

/// The kinds of ids that a support engineer may hold and that ``Correlation`` links together.
public enum CorrelationKind: String, Sendable, CaseIterable {
    /// A gateway's request id (the `X-Request-Id` it answers with), or one a caller sent in that header.
    case request
    /// A W3C trace id (32 hex digits).
    case trace
    case set
    case media
    /// A processing job's number.
    case job
    /// An outbox event's id.
    case event
}

/// One id of one kind: written `kind:id` (`media:0193…`).
public struct CorrelationNode: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var kind: CorrelationKind
    public var id: String

    public init(_ kind: CorrelationKind, _ id: String) {
        self.kind = kind
        self.id = id
    }

    /// Parses `kind:id`; `nil` for anything else.
    public init?(_ text: String) {
        guard let colon = text.firstIndex(of: ":"), let kind = CorrelationKind(rawValue: String(text[..<colon])) else { return nil }
        let id = String(text[text.index(after: colon)...])
        guard !id.isEmpty else { return nil }
        self.init(kind, id)
    }

    public var description: String { "\(kind.rawValue):\(id)" }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.description < rhs.description }

    public static func media(_ id: MediaID) -> Self { Self(.media, id.description) }
    public static func set(_ id: UploadSetID) -> Self { Self(.set, id.description) }
    public static func job(_ id: Int64) -> Self { Self(.job, "\(id)") }
    public static func event(_ id: UUID) -> Self { Self(.event, id.uuidString.lowercased()) }

    /// The nodes a bare id may be, by its shape: a UUID is a set, a media item or an event (they never
    /// collide) or a caller's request id, digits a job, 32 hex digits a trace or a request; `kind:id` is
    /// taken as written. Anything else is a request id.
    public static func candidates(for text: String) -> [CorrelationNode] {
        let text = text.trimmingCharacters(in: .whitespaces)
        if let node = CorrelationNode(text) { return [node] }
        if let uuid = UUID(uuidString: text) {
            let id = uuid.uuidString.lowercased()
            return [Self(.set, id), Self(.media, id), Self(.event, id), Self(.request, text)]
        }
        if !text.isEmpty, text.allSatisfy(\.isNumber), Int64(text) != nil { return [Self(.job, text)] }
        if text.count == 32, text.allSatisfy(\.isHexDigit) { return [Self(.trace, text.lowercased()), Self(.request, text)] }
        return text.isEmpty ? [] : [Self(.request, text)]
    }
}

/// A link between two ids: what happened between them, when, where, and how it ended.
public struct CorrelationLink: Sendable, Hashable {
    public var from: CorrelationNode
    public var to: CorrelationNode
    /// What the link is: `stored`, `media.stored`, `processing attempt 2`, `purged from edge-a`, …
    public var relation: String
    public var at: Date
    /// The host that did it.
    public var host: String
    /// How it ended: an HTTP status, `ready`, `retry`, `failed`, …
    public var state: String?
    /// The error's code and message, when it failed.
    public var error: String?
    public var durationMilliseconds: Int64?

    public init(
        from: CorrelationNode,
        to: CorrelationNode,
        relation: String,
        at: Date,
        host: String,
        state: String? = nil,
        error: String? = nil,
        durationMilliseconds: Int64? = nil
    ) {
        self.from = from
        self.to = to
        self.relation = relation
        self.at = at
        self.host = host
        self.state = state
        self.error = error
        self.durationMilliseconds = durationMilliseconds
    }
}

/// Where the links are kept: an adjacency list, walked when someone asks.
public protocol CorrelationStore: Sendable {
    /// Keeps the links (a batch at a time).
    func recordLinks(_ links: [CorrelationLink]) async throws

    /// Every link of the ids reachable from `start` in at most `depth` steps, at most `limit` ids (the
    /// nearest first) and `limit` neighbours of an id each way, in time order; at most `limit` × 10 links
    /// (the oldest).
    func correlatedLinks(from start: [CorrelationNode], depth: Int, limit: Int) async throws -> [CorrelationLink]

    /// Drops whole UTC days of links that ended by `cutoff`, and makes sure `daysAhead` days are ready.
    func rotateCorrelation(droppingDaysEndingBy cutoff: Date, daysAhead: Int, now: Date) async throws -> OutboxRotation
}

/// Keeps the links of one process in memory and writes them in batches (``flush(to:)``): the hot path only
/// appends to a buffer. The buffer is bounded; when the store cannot keep up (or is down), links are
/// dropped and counted (`mediagw_correlation_links_dropped_total`), never waited for.
public final class CorrelationRecorder: Sendable {
    public let host: String
    public let capacity: Int
    private let buffer = Mutex<[CorrelationLink]>([])

    public init(host: String, capacity: Int = 20_000) {
        self.host = host
        self.capacity = max(1, capacity)
    }

    /// Adds links to the next batch.
    public func record(_ links: [CorrelationLink]) {
        guard !links.isEmpty else { return }
        let dropped = buffer.withLock { buffer -> Int in
            let room = max(0, capacity - buffer.count)
            buffer.append(contentsOf: links.prefix(room))
            return links.count - min(room, links.count)
        }
        if dropped > 0 { CorrelationMetrics.dropped().increment(by: Int64(dropped)) }
    }

    /// How many links wait for the next flush.
    public var pending: Int { buffer.withLock { $0.count } }

    /// Writes what is buffered in one batch; returns how many links were written. When the store fails,
    /// the batch is dropped and counted: the links are a support aid, the rows of record are elsewhere.
    @discardableResult
    public func flush<Store: CorrelationStore>(to store: Store, logger: Logger) async -> Int {
        let batch = buffer.withLock { buffer in
            defer { buffer.removeAll(keepingCapacity: true) }
            return buffer
        }
        guard !batch.isEmpty else { return 0 }
        do {
            try await store.recordLinks(batch)
            CorrelationMetrics.written().increment(by: Int64(batch.count))
            return batch.count
        } catch {
            CorrelationMetrics.dropped().increment(by: Int64(batch.count))
            logger.warning("could not record correlation links; dropped", metadata: ["correlation.links": "\(batch.count)", "error": "\(error)"])
            return 0
        }
    }
}

/// The process's correlation of related work: the use cases say what they did to which id, and the links
/// go to the recorder that ``bootstrap(_:)`` installed (none: nothing is recorded). Inside a request
/// (``withRequest(_:_:)``), what is noted is linked to the request's id.
public enum Correlation {
    private static let installed = Mutex<CorrelationRecorder?>(nil)

    /// Installs the recorder of this process (once, at start; nothing is recorded before).
    public static func bootstrap(_ recorder: CorrelationRecorder?) {
        installed.withLock { $0 = recorder }
    }

    static var recorder: CorrelationRecorder? { installed.withLock { $0 } }

    /// Whether links are recorded.
    public static var isEnabled: Bool { recorder != nil }

    /// Records a link between two ids, made now by this host.
    public static func link(
        _ from: CorrelationNode,
        _ to: CorrelationNode,
        _ relation: String,
        state: String? = nil,
        error: String? = nil,
        duration: Duration? = nil
    ) {
        guard let recorder else { return }
        recorder.record([
            CorrelationLink(
                from: from,
                to: to,
                relation: relation,
                at: Date(),
                host: recorder.host,
                state: state,
                error: error,
                durationMilliseconds: duration.map(Self.milliseconds)
            )
        ])
    }

    /// Notes, inside a request, that it touched `node` (`relation` says how); nothing outside a request.
    public static func note(_ node: CorrelationNode, _ relation: String, error: String? = nil) {
        RequestCorrelation.current?.note(node, relation, error: error)
    }

    /// Runs a request's handling with its scope: what the use cases note is linked to the request when it
    /// ends (with its status and duration), together with its trace and the caller's own request id. A
    /// request that touched nothing (a read) records nothing.
    public static func withRequest<T>(_ request: RequestCorrelation, _ body: () async throws -> T) async rethrows -> T {
        guard isEnabled else { return try await body() }
        return try await RequestCorrelation.$current.withValue(request) { try await body() }
    }

    /// An upload recorded: its set holds it, and the request (if any) stored it.
    public static func stored(_ media: Media) {
        link(.set(media.uploadSetID), .media(media.id), "stored", state: media.kind.rawValue)
        note(.media(media.id), "stored")
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}

/// One request's correlation scope (see ``Correlation/withRequest(_:_:)``).
public final class RequestCorrelation: Sendable {
    @TaskLocal static var current: RequestCorrelation?

    public let requestID: String
    /// The caller's `X-Request-Id`, when it sent one.
    public let callerRequestID: String?
    /// The trace id of the request's span, when it is traced.
    public let traceID: String?
    let started = ContinuousClock.now
    /// The recorder installed when the request came in.
    let recorder = Correlation.recorder
    private let notes = Mutex<[(CorrelationNode, String, String?)]>([])

    public init(requestID: String, callerRequestID: String?, traceID: String?) {
        self.requestID = requestID
        self.callerRequestID = callerRequestID
        self.traceID = traceID
    }

    func note(_ node: CorrelationNode, _ relation: String, error: String?) {
        notes.withLock { $0.append((node, relation, error)) }
    }

    /// Records the request's links once it is answered: `route` is its template, `status` its answer.
    public func finish(route: String, status: Int) {
        guard let recorder else { return }
        let noted = notes.withLock { $0 }
        guard !noted.isEmpty else { return }
        let request = CorrelationNode(.request, requestID)
        let now = Date()
        let milliseconds = Correlation.milliseconds(ContinuousClock.now - started)
        var links = noted.map { node, relation, error in
            CorrelationLink(
                from: request,
                to: node,
                relation: "\(relation) by \(route)",
                at: now,
                host: recorder.host,
                state: "\(status)",
                error: error,
                durationMilliseconds: milliseconds
            )
        }
        if let traceID {
            links.append(CorrelationLink(from: request, to: CorrelationNode(.trace, traceID), relation: "traced", at: now, host: recorder.host))
        }
        if let callerRequestID, callerRequestID != requestID {
            links.append(
                CorrelationLink(
                    from: request,
                    to: CorrelationNode(.request, callerRequestID),
                    relation: "caller's request id",
                    at: now,
                    host: recorder.host
                )
            )
        }
        recorder.record(links)
    }
}

/// The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`).
extension TraceParent {
    public static func traceID(_ traceparent: String?) -> String? {
        guard let parts = traceparent?.split(separator: "-"), parts.count >= 3, parts[1].count == 32 else { return nil }
        return String(parts[1])
    }
}

/// The recorder's metrics, made once.
enum CorrelationMetrics {
    static let written = MetricFamily<Counter>.counters("mediagw_correlation_links_written_total", labels: [])
    static let dropped = MetricFamily<Counter>.counters("mediagw_correlation_links_dropped_total", labels: [])
}

/// The connected story of one id (`mediagw correlate`): every link reachable from it in time order, with
/// what the metadata says of its media items and sets now.
public struct CorrelationStory: Sendable {
    /// The ids the asked id matched (a bare UUID may be a set, a media item or an event).
    public var matched: [CorrelationNode]
    /// Every link, oldest first.
    public var links: [CorrelationLink]
    /// The media items of the story as they are now (a purged item has no row).
    public var media: [Media]
    /// The sets of the story as they are now.
    public var sets: [UploadSet]

    /// Every id of the story.
    public var nodes: [CorrelationNode] { Set(links.flatMap { [$0.from, $0.to] }).sorted() }

    /// Walks the links from `id` (bare or `kind:id`, see ``CorrelationNode/candidates(for:)``) at most
    /// `depth` steps and `limit` ids away.
    public static func find<Links: CorrelationStore, Metadata: MetadataStore>(
        _ id: String,
        links store: Links,
        metadata: Metadata,
        depth: Int = 8,
        limit: Int = 500
    ) async throws -> CorrelationStory {
        let candidates = CorrelationNode.candidates(for: id)
        let links = try await store.correlatedLinks(from: candidates, depth: depth, limit: limit)
        let touched = Set(links.flatMap { [$0.from, $0.to] })
        var story = CorrelationStory(matched: candidates.filter(touched.contains), links: links, media: [], sets: [])
        for node in story.nodes {
            switch node.kind {
            case .media:
                if let id = MediaID(node.id), let media = try await metadata.media(id) { story.media.append(media) }
            case .set:
                if let id = UploadSetID(node.id), let set = try await metadata.uploadSet(id) { story.sets.append(set) }
            default:
                break
            }
        }
        return story
    }

    /// The story for a person: one line per link, then the items and sets as they are now.
    public var lines: [String] {
        guard !links.isEmpty else { return [] }
        var lines = ["\(nodes.count) ids, \(links.count) links, from \(matched.map(\.description).joined(separator: ", "))"]
        for link in links {
            var line =
                "\(link.at.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)))  \(link.from) -[\(link.relation)]-> \(link.to)"
            if let state = link.state { line += "  \(state)" }
            if let milliseconds = link.durationMilliseconds { line += "  \(milliseconds) ms" }
            line += "  on \(link.host)"
            if let error = link.error { line += "  error: \(error)" }
            lines.append(line)
        }
        for set in sets { lines.append("now: set:\(set.id) \(set.state.rawValue) (\(set.context.rawValue) \(set.contextID), owner \(set.ownerID))") }
        for item in media {
            var line = "now: media:\(item.id) \(item.state.rawValue) (\(item.kind.rawValue), \(item.mime), \(item.size) B)"
            if let reason = item.failureReason { line += " reason: \(reason)" }
            lines.append(line)
        }
        return lines
    }

    /// The story as one JSON object: `ids`, `matched`, `links` (from, to, relation, at, host, state, error,
    /// duration_ms), `media` and `sets` (id, state).
    public var json: String {
        func iso(_ date: Date) -> String {
            date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
        }
        let object: [String: Any] = [
            "ids": nodes.map(\.description),
            "matched": matched.map(\.description),
            "links": links.map { link in
                var entry: [String: Any] = [
                    "from": link.from.description, "to": link.to.description, "relation": link.relation, "at": iso(link.at), "host": link.host,
                ]
                if let state = link.state { entry["state"] = state }
                if let error = link.error { entry["error"] = error }
                if let milliseconds = link.durationMilliseconds { entry["duration_ms"] = milliseconds }
                return entry
            },
            "media": media.map { ["id": $0.id.description, "state": $0.state.rawValue, "failure_reason": $0.failureReason ?? ""] },
            "sets": sets.map { ["id": $0.id.description, "state": $0.state.rawValue] },
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
