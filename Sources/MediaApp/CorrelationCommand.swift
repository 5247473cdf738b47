import Foundation
import Logging
import MediaCore
import PostgresMetadata
import ServiceLifecycle

/// The recording side of ``Correlation`` in a long-running command (`serve`, `worker`).
enum MediaCorrelation {
    /// Installs this process's recorder and returns the service that writes its batches, or nothing when
    /// correlation is off. Place the service after the PostgreSQL pool and before what records (the HTTP
    /// server, the workers): it stops after them and writes what they recorded last.
    static func services(
        _ configuration: CorrelationConfiguration,
        store: PostgresMetadataStore,
        prepare: @escaping @Sendable () async throws -> Void,
        logger: Logger
    ) -> [ServiceGroupConfiguration.ServiceConfiguration] {
        guard configuration.enabled else { return [] }
        let recorder = CorrelationRecorder(host: configuration.hostName, capacity: configuration.buffer)
        Correlation.bootstrap(recorder)
        return [
            .init(
                service: CorrelationFlushService(
                    recorder: recorder,
                    store: store,
                    interval: configuration.flushInterval,
                    logger: logger,
                    prepare: prepare
                )
            )
        ]
    }
}

extension MediaCorrelation {
    /// For a one-shot command (direct ingest): records while `body` runs, writing every flush interval and
    /// once more at the end.
    static func recording<T: Sendable>(
        _ configuration: CorrelationConfiguration,
        store: PostgresMetadataStore,
        logger: Logger,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        guard configuration.enabled else { return try await body() }
        let recorder = CorrelationRecorder(host: configuration.hostName, capacity: configuration.buffer)
        Correlation.bootstrap(recorder)
        defer { Correlation.bootstrap(nil) }
        let flushing = Task {
            while true {
                try? await Task.sleep(for: configuration.flushInterval)
                // cancelled: the run is over and the last flush below writes what is left. A flush made here
                // now would run cancelled, and its batch be dropped by the store's refusal.
                if Task.isCancelled { return }
                // a flush under way when the run ends finishes (a task of its own is not cancelled with this one)
                await Task { await recorder.flush(to: store, logger: logger) }.value
            }
        }
        let result: Result<T, any Error>
        do {
            result = .success(try await body())
        } catch {
            result = .failure(error)
        }
        // what the run linked is written whether it succeeded or not
        flushing.cancel()
        _ = await flushing.value
        await recorder.flush(to: store, logger: logger)
        return try result.get()
    }
}

/// Writes the recorder's links every `interval`, and once more at shutdown.
struct CorrelationFlushService<Store: CorrelationStore>: Service {
    let recorder: CorrelationRecorder
    let store: Store
    let interval: Duration
    let logger: Logger
    /// What must be done before the first write (the schema migrated).
    let prepare: @Sendable () async throws -> Void

    func run() async throws {
        try await prepare()
        await everyInterval(interval) { await recorder.flush(to: store, logger: logger) }
        await recorder.flush(to: store, logger: logger)
    }
}

/// `mediagw correlate <id>`: the story of an id, from PostgreSQL only.
public enum CorrelateCommand {
    public static func run(
        _ configuration: MigrateConfiguration,
        id: String,
        json: Bool,
        depth: Int,
        limit: Int,
        logger: Logger
    ) async throws -> [String] {
        let runtime = try await MediaRuntime.connect(storage: nil, database: configuration.database, logger: logger)
        return try await runtime.run(migrate: false) { runtime in
            let story = try await CorrelationStory.find(id, links: runtime.metadata, metadata: runtime.metadata, depth: depth, limit: limit)
            guard !story.links.isEmpty else { return [] }
            return json ? [story.json] : story.lines
        }
    }
}
