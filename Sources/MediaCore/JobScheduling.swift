import Foundation

/// How soon a set's media are processed. A person waiting for their own photo goes before bulk work
/// (an ingest, a backfill), which still gets a share of the workers' time so that it never starves.
public enum ProcessingPriority: String, Sendable, Hashable, CaseIterable, Codable, CustomStringConvertible {
    /// Uploads by people and the services acting for them: the default.
    case interactive
    /// Ingested and backfilled media.
    case bulk

    public var description: String { rawValue }
}

/// One step of a claim: the oldest runnable job of one of `kinds` at `priority`.
public struct ClaimStep: Sendable, Hashable, CustomStringConvertible {
    /// Kinds taken by this step, in a stable order.
    public var kinds: [MediaKind]
    public var priority: ProcessingPriority

    public init(kinds: [MediaKind], priority: ProcessingPriority) {
        self.kinds = MediaKind.allCases.filter(kinds.contains)
        self.priority = priority
    }

    public var description: String { "\(priority) \(kinds.map(\.rawValue).joined(separator: "+"))" }

    /// Every kind, interactive work first: for draining the queue in tests and one-shot runs.
    public static let everything = ProcessingPriority.allCases.flatMap { priority in
        [ClaimStep(kinds: [.photo, .audio], priority: priority), ClaimStep(kinds: [.video], priority: priority)]
    }
}

/// What one worker takes. Video transcodes are long, photos and audio short: keeping some workers off
/// video means that a video backlog never holds up a photo.
public enum WorkerLane: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Photos and audio only.
    case stills
    /// Video first, then photos and audio when no video waits.
    case video
    /// Everything (the only worker): video and the rest share its time.
    case all

    public var description: String { rawValue }
}

/// The order in which one worker looks for its next job. Interactive work goes first, unless bulk work
/// has had less than `bulkShare` of the worker's recent busy time: then bulk work goes first for one
/// claim. The share is of time, not of claims, because a bulk job may take many times longer than an
/// interactive one. So interactive work waits for little more than the jobs already running, and bulk
/// work keeps at least its share whatever the interactive load. A worker of the `all` lane shares its
/// time between video and the other kinds the same way, half and half. A worker of the `video` lane gives
/// bulk work's turn to bulk video; when it helps with photos and audio it takes interactive ones first, as
/// the stills workers keep bulk work's share of those.
///
/// Recent means with a memory that fades with an e-folding time of `memory` seconds: a long quiet or
/// busy spell does not decide the order long after it ended.
public struct ClaimScheduler: Sendable, Hashable {
    public let lane: WorkerLane
    public let bulkShare: Double
    public let memory: Double
    /// Recent busy seconds, faded, by priority and by kind of work.
    private var interactiveSeconds = 0.0
    private var bulkSeconds = 0.0
    private var videoSeconds = 0.0
    private var stillsSeconds = 0.0
    private var lastEnd: Double?

    public init(lane: WorkerLane, bulkShare: Double, memory: Double = 10) {
        self.lane = lane
        self.bulkShare = min(max(bulkShare, 0), 1)
        self.memory = max(memory, 0.001)
    }

    /// The steps of the next claim, first tried first.
    public var steps: [ClaimStep] {
        let priorities: [ProcessingPriority] =
            Self.owed(bulkSeconds, of: interactiveSeconds, share: bulkShare) ? [.bulk, .interactive] : [.interactive, .bulk]
        let stills: [MediaKind] = [.photo, .audio]
        switch lane {
        case .stills:
            return priorities.map { ClaimStep(kinds: stills, priority: $0) }
        case .video:
            let helping = [ClaimStep(kinds: stills, priority: .interactive), ClaimStep(kinds: stills, priority: .bulk)]
            let video = priorities.map { ClaimStep(kinds: [.video], priority: $0) }
            // bulk's turn goes to bulk video; photos and audio are only helped with, interactive first
            return priorities[0] == .bulk ? video + helping : [video[0], helping[0], video[1], helping[1]]
        case .all:
            let groups: [[MediaKind]] = Self.owed(videoSeconds, of: stillsSeconds, share: 0.5) ? [[.video], stills] : [stills, [.video]]
            return priorities.flatMap { priority in groups.map { ClaimStep(kinds: $0, priority: priority) } }
        }
    }

    /// Records a job that ran from `start` to `end` (seconds on any monotonic clock).
    public mutating func ran(_ priority: ProcessingPriority, _ kind: MediaKind, from start: Double, to end: Double) {
        let fade = lastEnd.map { last in Foundation.exp(-max(0, end - last) / memory) } ?? 1
        interactiveSeconds *= fade
        bulkSeconds *= fade
        videoSeconds *= fade
        stillsSeconds *= fade
        let seconds = max(0, end - start)
        switch priority {
        case .interactive: interactiveSeconds += seconds
        case .bulk: bulkSeconds += seconds
        }
        if kind == .video { videoSeconds += seconds } else { stillsSeconds += seconds }
        lastEnd = max(lastEnd ?? end, end)
    }

    /// Whether `mine` is less than `share` of the time spent on `mine` and `theirs`.
    private static func owed(_ mine: Double, of theirs: Double, share: Double) -> Bool {
        mine + theirs > 0 && mine < share * (mine + theirs)
    }
}

extension WorkerSettings {
    /// The lane of each worker: one worker takes everything; more keep `videoWorkers` of them (at least one,
    /// at most all but one) for video first and the others on photos and audio.
    public var lanes: [WorkerLane] {
        let count = max(1, concurrency)
        guard count > 1 else { return [.all] }
        let video = min(max(1, videoWorkers), count - 1)
        return Array(repeating: .stills, count: count - video) + Array(repeating: .video, count: video)
    }
}
