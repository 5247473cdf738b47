import Foundation
import Logging
import Metrics
import Tracing

/// Settings of the processing workers.
public struct WorkerSettings: Sendable, Hashable {
    /// Jobs processed at once.
    public var concurrency: Int
    /// How long a claim lasts without renewal: a worker renews its jobs' leases every third of it while it
    /// runs them, so a worker that dies (or a claim whose answer was lost in a failover) frees its job after
    /// at most this long.
    public var lease: Duration
    /// Attempts before a job is dead and its media failed (permanent errors fail at once).
    public var maxAttempts: Int
    /// The wait before the first retry; it doubles with each attempt.
    public var backoff: Duration
    /// How long an idle worker waits before looking for work again.
    public var pollInterval: Duration
    /// Workers that take video first (the others take photos and audio only), when there are several.
    public var videoWorkers: Int
    /// The share of a worker's busy time that bulk work keeps when interactive work waits too (see
    /// ``ClaimScheduler``), so that neither starves.
    public var bulkShare: Double
    /// The longest a worker renews one job's lease. A job's processing ends at its timeout and recording
    /// its outcome has deadlines of its own, so a worker still holding a job past this is stuck somewhere
    /// no deadline reaches: it stops renewing, and another worker takes the job once the lease runs out.
    public var holdLimit: Duration

    public init(
        concurrency: Int = ProcessInfo.processInfo.activeProcessorCount,
        lease: Duration = .seconds(60),
        maxAttempts: Int = 3,
        backoff: Duration = .seconds(10),
        pollInterval: Duration = .milliseconds(500),
        videoWorkers: Int? = nil,
        bulkShare: Double = 0.2,
        holdLimit: Duration = .seconds(360)
    ) {
        self.concurrency = concurrency
        self.lease = lease
        self.maxAttempts = maxAttempts
        self.backoff = backoff
        self.pollInterval = pollInterval
        self.videoWorkers = videoWorkers ?? max(1, concurrency / 2)
        self.bulkShare = bulkShare
        self.holdLimit = holdLimit
    }
}

/// Takes jobs from the queue and processes them: `stored → processing → ready | failed`.
/// The renditions are written by the processor through the ``StagedWrite`` (Ceph first); their rows, the
/// media's new state and the event are then committed together, and the ledger entries cleared.
public struct JobRunner<Storage: MediaStores, Processing: MediaProcessing>: Sendable {
    public let storage: Storage
    public let processing: Processing
    public let settings: WorkerSettings
    let staging: StagedWrite<Storage.Blobs, Storage.Ledger>
    let clock: MediaClock
    let faults: FaultInjection
    let logger: Logger

    public init(
        storage: Storage,
        processing: Processing,
        settings: WorkerSettings,
        clock: MediaClock = .system,
        faults: FaultInjection = .none,
        logger: Logger
    ) {
        self.storage = storage
        self.processing = processing
        self.settings = settings
        self.staging = StagedWrite(blobs: storage.blobs, ledger: storage.ledger, faults: faults, logger: logger)
        self.clock = clock
        self.faults = faults
        self.logger = logger
    }

    /// Runs `concurrency` workers, each in its lane (``WorkerSettings/lanes``), until `stop` says so
    /// (checked between jobs: a job in progress finishes).
    public func run(stop: @escaping @Sendable () -> Bool) async {
        await withTaskGroup(of: Void.self) { group in
            for lane in settings.lanes {
                group.addTask {
                    var scheduler = ClaimScheduler(lane: lane, bulkShare: settings.bulkShare)
                    var reclaims = ReclaimSchedule(every: settings.lease / 3)
                    let clock = ContinuousClock()
                    let origin = clock.now
                    while !stop() && !Task.isCancelled {
                        let start = (clock.now - origin).seconds
                        guard let job = try? await runOne(scheduler.steps, reclaimingExpired: reclaims.due(at: start)) else {
                            try? await Task.sleep(for: settings.pollInterval)
                            continue
                        }
                        scheduler.ran(job.priority, job.kind, from: start, to: (clock.now - origin).seconds)
                    }
                }
            }
        }
    }

    /// Processes jobs of every kind, interactive first, until none is runnable; returns how many were
    /// handled. For tests and one-shot runs.
    @discardableResult
    public func drain() async throws -> Int {
        var handled = 0
        while try await runOne() != nil { handled += 1 }
        return handled
    }

    /// Claims and handles one job, the first that `steps` find; returns it, or `nil` when there was none.
    @discardableResult
    public func runOne(_ steps: [ClaimStep] = ClaimStep.everything, reclaimingExpired: Bool = true) async throws -> ProcessingJob? {
        let claimed: ProcessingJob?
        do {
            claimed = try await storage.metadata.claimJob(steps, reclaimingExpired: reclaimingExpired, lease: settings.lease, now: clock.now())
        } catch {
            logger.warning("could not claim jobs", metadata: ["error": "\(error)"])
            throw error
        }
        guard let job = claimed else { return nil }
        await faults.reach(.jobClaimed)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await keepLease(job) }
            await handle(job)
            group.cancelAll()
        }
        return job
    }

    /// Renews the job's lease every third of it until cancelled (the job ended), the claim is lost, or the
    /// job has been held for ``WorkerSettings/holdLimit``.
    func keepLease(_ job: ProcessingJob) async {
        var logger = self.logger
        logger[metadataKey: "job.id"] = "\(job.jobID)"
        let started = ContinuousClock.now
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: settings.lease / 3)
            } catch {
                return
            }
            if ContinuousClock.now - started >= settings.holdLimit {
                logger.error(
                    "a job was held past the hold limit; its lease is left to run out so that another worker takes it",
                    metadata: ["job.hold_limit": "\(settings.holdLimit)"]
                )
                JobMetrics.jobs(job.kind.rawValue, "abandoned").increment()
                return
            }
            do {
                if try await !storage.metadata.renewLease(job, lease: settings.lease, now: clock.now()) {
                    logger.warning("the job's claim was lost: another worker may run it too")
                    return
                }
            } catch {
                logger.notice("could not renew the job's lease; trying again", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Processes one claimed job in a span of its own trace, linked to the trace of the request that stored
    /// the media.
    func handle(_ job: ProcessingJob) async {
        await withSpan("process \(job.kind.rawValue)", context: .topLevel, ofKind: .consumer) { span in
            if let trace = job.trace { span.addLink(TraceParent.link(trace)) }
            span.attributes["media.id"] = "\(job.mediaID)"
            span.attributes["media.kind"] = job.kind.rawValue
            span.attributes["job.id"] = Int(job.jobID)
            span.attributes["job.attempts"] = job.attempts
            let started = ContinuousClock.now
            let (state, error) = await process(job, in: span)
            Correlation.link(
                .job(job.jobID),
                .media(job.mediaID),
                "processing attempt \(job.attempts)",
                state: state,
                error: error,
                duration: ContinuousClock.now - started
            )
            if let trace = TraceParent.traceID(TraceParent.current()) { Correlation.link(.job(job.jobID), CorrelationNode(.trace, trace), "traced") }
        }
    }

    /// Processes the job and records how it ended; returns that end (`ready`, `retry`, `failed`, `error`)
    /// and the error, for the correlation of the media's story.
    private func process(_ job: ProcessingJob, in span: any Span) async -> (state: String, error: String?) {
        let started = ContinuousClock.now
        var logger = self.logger
        logger[metadataKey: "media.id"] = "\(job.mediaID)"
        logger[metadataKey: "job.id"] = "\(job.jobID)"
        let outcome: ProcessingOutcome
        do {
            // the renditions are made (and written) by a processor process, which is not traced: this span is
            // its whole run
            outcome = try await withSpan("render \(job.kind.rawValue)") { _ in try await processing.process(job) }
        } catch {
            let failure = error as? ProcessingError ?? ProcessingError(.internal, "\(error)")
            span.setStatus(SpanStatus(code: .error, message: failure.code.rawValue))
            span.attributes["job.outcome"] = failure.permanent ? "failed" : "retry"
            let retry = !failure.permanent && job.attempts < settings.maxAttempts
            let wait = settings.backoff * (1 << min(job.attempts - 1, 10))
            logger.notice(
                retry ? "processing failed; will retry" : "processing failed",
                metadata: ["error": "\(failure)", "job.attempts": "\(job.attempts)"]
            )
            do {
                try await storage.metadata.failJob(job, error: failure, retry: retry, retryAfter: wait, now: clock.now())
            } catch {
                logger.warning("could not record the failure; the lease will expire and the job run again", metadata: ["error": "\(error)"])
            }
            Self.count(job.kind, retry ? "retry" : "failed", since: started)
            return (retry ? "retry" : "failed", "\(failure.code.rawValue): \(failure.message)")
        }
        await faults.reach(.jobProcessed)
        do {
            try await staging.commit(outcome.staged) {
                let obsolete = try await storage.metadata.completeJob(job, outcome: outcome, now: clock.now())
                // objects no row refers to any more go before the entries of this run's renditions
                for location in obsolete {
                    do {
                        try await storage.blobs.removeIfPresent(location)
                    } catch {
                        logger.warning("could not remove an obsolete rendition", metadata: ["object": "\(location)", "error": "\(error)"])
                    }
                }
            }
            Self.count(job.kind, "ready", since: started)
            span.attributes["job.outcome"] = "ready"
            return ("ready", nil)
        } catch {
            span.setStatus(SpanStatus(code: .error, message: "result not recorded"))
            // the renditions keep their ledger entries: the job runs again after its lease, or the reconciler
            // removes them
            logger.warning("could not record the result", metadata: ["error": "\(error)"])
            Self.count(job.kind, "error", since: started)
            return ("error", "result not recorded: \(error)")
        }
    }

    static func count(_ kind: MediaKind, _ outcome: String, since started: ContinuousClock.Instant) {
        JobMetrics.jobs(kind.rawValue, outcome).increment()
        JobMetrics.durations(kind.rawValue).recordNanoseconds(Int64((ContinuousClock.now - started).seconds * 1e9))
    }
}

/// When a worker looks for jobs whose lease expired (their worker died): at its first claim, then at most
/// once every `interval` (a third of the lease), not at every poll. An abandoned job therefore waits at
/// most a lease and a third; an idle worker's polls cost one query less each.
public struct ReclaimSchedule: Sendable, Hashable {
    public let interval: Double
    private var next: Double = -.infinity

    public init(every interval: Duration) {
        self.interval = interval.seconds
    }

    /// Whether the claim at `now` (seconds on the worker's clock) looks for expired leases.
    public mutating func due(at now: Double) -> Bool {
        guard now >= next else { return false }
        next = now + interval
        return true
    }
}

/// Jobs by kind and outcome, and their durations, made once.
enum JobMetrics {
    static let jobs = MetricFamily<Counter>.counters("mediagw_jobs_total", labels: ["kind", "outcome"])
    static let durations = MetricFamily<Timer>.timers("mediagw_job_duration_seconds", labels: ["kind"])
}
