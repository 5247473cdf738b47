import Foundation
import Logging
import Metrics
import Synchronization
import Tracing

/// Something a CDN edge may hold of one origin path.
public struct EdgeObject: Sendable, Hashable, CustomStringConvertible {
    /// How an edge caches a path.
    public enum Caching: Sendable, Hashable {
        /// The whole response.
        case whole
        /// One response per variant of `Accept` (a rendition URL without a format).
        case negotiated
        /// Fixed-size slices of an object of `size` bytes (audio and video).
        case sliced(size: Int64)
    }

    public var path: String
    public var caching: Caching

    public init(path: String, caching: Caching) {
        self.path = path
        self.caching = caching
    }

    public var description: String { path }
}

/// A CDN edge whose cache can be purged: an adapter owns the protocol (the nginx edge of `Deploy/cdn`).
public protocol EdgeCache: Sendable {
    /// The edge's name in logs and metrics (its configured address: a bounded set).
    var name: String { get }
    /// Removes whatever the edge holds of `objects`. Succeeds when it held nothing; throws when the edge
    /// could not be asked or did not answer (the purge is then tried again).
    func purge(_ objects: [EdgeObject]) async throws
}

/// A deleted media item, as its `media.deleted` event describes it: enough to name every URL it was
/// served under, after its rows are gone.
public struct DeletedMedia: Sendable, Hashable {
    public var id: MediaID
    public var kind: MediaKind
    public var mime: String
    public var size: Int64
    public var renditions: [DeletedRendition]

    public init(id: MediaID, kind: MediaKind, mime: String, size: Int64, renditions: [DeletedRendition]) {
        self.id = id
        self.kind = kind
        self.mime = mime
        self.size = size
        self.renditions = renditions
    }

    /// The item a `media.deleted` event describes; `nil` for other events.
    public init?(_ event: OutboxEvent) {
        guard event.type == "media.deleted",
            let json = try? JSONSerialization.jsonObject(with: Data(event.payload.utf8)) as? [String: Any],
            let id = (json["media_id"] as? String).flatMap(MediaID.init),
            let kind = (json["kind"] as? String).flatMap(MediaKind.init(rawValue:)),
            let mime = json["mime"] as? String,
            let size = (json["size"] as? NSNumber)?.int64Value
        else { return nil }
        let renditions = (json["renditions"] as? [[String: Any]] ?? []).compactMap { entry -> DeletedRendition? in
            guard let name = entry["name"] as? String, let key = entry["key"] as? String, let size = (entry["size"] as? NSNumber)?.int64Value
            else { return nil }
            return DeletedRendition(name: name, key: key, size: size)
        }
        self.init(id: id, kind: kind, mime: mime, size: size, renditions: renditions)
    }

    /// Every path the origin served the item under (``OriginPaths``), with how an edge caches each.
    public var edgeObjects: [EdgeObject] {
        let paths = OriginPaths(id: id, mime: mime, renditions: renditions.map { ($0.name, $0.key) })
        let sizes = Dictionary(renditions.map { ($0.name, $0.size) }, uniquingKeysWith: { first, _ in first })
        var objects = [EdgeObject(path: paths.original, caching: kind == .photo ? .whole : .sliced(size: size))]
        for (name, path) in paths.renditions.sorted(by: { $0.key < $1.key }) {
            let timed = name.hasSuffix(".mp4") || name.hasSuffix(".m4a")
            objects.append(EdgeObject(path: path, caching: timed ? .sliced(size: sizes[name] ?? 0) : .whole))
        }
        for path in paths.negotiated.values.sorted() { objects.append(EdgeObject(path: path, caching: .negotiated)) }
        return objects
    }
}

/// A rendition of a deleted media item: its name, object key and size.
public struct DeletedRendition: Sendable, Hashable {
    public var name: String
    public var key: String
    public var size: Int64

    public init(name: String, key: String, size: Int64) {
        self.name = name
        self.key = key
        self.size = size
    }
}

/// Purges the media that `media.deleted` events name from one edge, reading the outbox from a cursor kept
/// in the metadata store under `consumer`: a purge that fails keeps the cursor where it was, so the same
/// events are purged again on the next pass. Several gateways may run the same purger: the cursor only
/// moves forward (compare and set) and purging twice does no harm. A purger keeps the cursor it last
/// wrote and reads it from the store again only when the compare and set finds another purger moved it.
public struct EdgePurger<Metadata: MetadataStore, Edge: EdgeCache>: Sendable {
    public let metadata: Metadata
    public let edge: Edge
    public let batch: Int
    let logger: Logger
    /// The cursor as this purger last wrote it; `nil` until read, and again after another purger moved it.
    private let cursor = CursorMemory()

    public init(metadata: Metadata, edge: Edge, batch: Int = 100, logger: Logger) {
        self.metadata = metadata
        self.edge = edge
        self.batch = batch
        self.logger = logger
    }

    /// The cursor's name in the metadata store.
    public var consumer: String { "edge-purge:\(edge.name)" }

    /// Reads the next events (at most `batch`) and purges what they name; returns how many events were read
    /// and how many media items purged. Throws when the edge or the store failed: nothing was skipped.
    @discardableResult
    public func pass() async throws -> (events: Int, purged: Int) {
        let cursor: Int64
        if let known = self.cursor.value.withLock({ $0 }) {
            cursor = known
        } else {
            cursor = try await metadata.consumerCursor(consumer)
        }
        let events: [OutboxEvent]
        do {
            events = try await metadata.events(after: cursor, limit: batch)
        } catch let error as MetadataStoreError where error.code == .cursorExpired {
            guard let horizon = (error.cause as? OutboxHorizon)?.horizon else { throw error }
            // what retention dropped cannot be purged from here any more: say so loudly and read on
            logger.error(
                "the edge purger fell behind the outbox's retention: deletions in the dropped events were not purged",
                metadata: ["edge": "\(edge.name)", "outbox.cursor": "\(cursor)", "outbox.horizon": "\(horizon)"]
            )
            PurgeMetrics.purges(edge.name, "expired").increment()
            let moved = try await metadata.advanceConsumerCursor(consumer, from: cursor, to: horizon)
            self.cursor.value.withLock { $0 = moved ? horizon : nil }
            return (0, 0)
        }
        guard let last = events.last else { return (0, 0) }
        let deletions = events.compactMap { event in DeletedMedia(event).map { (event: event.id, media: $0) } }
        let deleted = deletions.map(\.media)
        if !deleted.isEmpty {
            let started = ContinuousClock.now
            do {
                // a trace per purge batch, with the edge's requests in it (idle passes are not traced)
                try await withSpan("edge purge", context: .topLevel) { span in
                    span.attributes["edge"] = edge.name
                    span.attributes["media.ids"] = deleted.map { "\($0.id)" }
                    try await edge.purge(deleted.flatMap(\.edgeObjects))
                }
            } catch {
                PurgeMetrics.purges(edge.name, "failed").increment(by: Int64(deleted.count))
                correlate(deletions, "failed", error: "\(error)", since: started)
                throw error
            }
            PurgeMetrics.purges(edge.name, "purged").increment(by: Int64(deleted.count))
            correlate(deletions, "purged", since: started)
            logger.debug("purged deleted media from the edge", metadata: ["edge": "\(edge.name)", "media.count": "\(deleted.count)"])
        }
        let moved = try await metadata.advanceConsumerCursor(consumer, from: cursor, to: last.sequence)
        // another purger moved it: read it again next time (what this pass purged twice did no harm)
        self.cursor.value.withLock { $0 = moved ? last.sequence : nil }
        return (events.count, deleted.count)
    }
}

extension EdgePurger {
    /// Links each `media.deleted` event to its media item with how its purge from this edge went.
    private func correlate(
        _ deletions: [(event: UUID, media: DeletedMedia)],
        _ state: String,
        error: String? = nil,
        since started: ContinuousClock.Instant
    ) {
        let elapsed = ContinuousClock.now - started
        for deletion in deletions {
            Correlation.link(
                .event(deletion.event),
                .media(deletion.media.id),
                "purged from edge \(edge.name)",
                state: state,
                error: error,
                duration: elapsed
            )
        }
    }
}

/// A purger's copy of its cursor, shared by the copies of the purger.
private final class CursorMemory: Sendable {
    let value = Mutex<Int64?>(nil)
}

/// Purges by edge and outcome, made once.
enum PurgeMetrics {
    static let purges = MetricFamily<Counter>.counters("mediagw_edge_purges_total", labels: ["edge", "outcome"])
}
