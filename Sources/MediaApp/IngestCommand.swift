import Foundation
import Logging
import MediaClient
import MediaCore
import MediaIngest
import Synchronization

/// `mediagw ingest`: bulk import of a directory or a manifest, directly or through a running gateway,
/// resumable by its state file, with progress on stderr, a summary and a JSONL report.
public struct IngestCommand: Sendable {
    /// A failure of the command: one line, and the exit code (2 usage or configuration, 1 otherwise).
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public var exitCode: Int32

        public init(_ description: String, exitCode: Int32 = 1) {
            self.description = description
            self.exitCode = exitCode
        }
    }

    public var directory: String?
    public var manifest: String?
    public var owner: String
    public var context: String
    public var contextID: String?
    public var isPrivate: Bool
    public var gateway: String?
    public var token: String?
    public var jobs: Int
    public var state: String?
    public var report: String?
    public var dryRun: Bool
    public var progress: String
    public var environment: EnvironmentReader

    public init(
        directory: String?,
        manifest: String?,
        owner: String,
        context: String,
        contextID: String?,
        isPrivate: Bool,
        gateway: String?,
        token: String?,
        jobs: Int,
        state: String?,
        report: String?,
        dryRun: Bool,
        progress: String,
        environment: EnvironmentReader
    ) {
        self.directory = directory
        self.manifest = manifest
        self.owner = owner
        self.context = context
        self.contextID = contextID
        self.isPrivate = isPrivate
        self.gateway = gateway
        self.token = token
        self.jobs = jobs
        self.state = state
        self.report = report
        self.dryRun = dryRun
        self.progress = progress
        self.environment = environment
    }

    /// Files in flight by default: four per core.
    public static var defaultJobs: Int { IngestOptions.defaultJobs }

    /// Runs the import and prints its summary on stdout. Throws a ``Failure`` whose exit code says whether
    /// the usage or configuration was wrong (2) or some files were refused or failed (1).
    public func run() async throws(Failure) {
        // 1. what to ingest; every usage problem is one line and exit code 2
        guard (directory == nil) != (manifest == nil) else { throw Failure("give either a directory or --manifest FILE", exitCode: 2) }
        guard (1...512).contains(jobs) else { throw Failure("--jobs must be between 1 and 512", exitCode: 2) }
        guard ["auto", "bar", "lines", "none"].contains(progress) else { throw Failure("--progress must be auto, bar, lines or none", exitCode: 2) }
        let serviceToken = token ?? environment.string("MEDIAGW_INGEST_TOKEN")
        if gateway != nil && serviceToken == nil { throw Failure("--gateway needs --token (or MEDIAGW_INGEST_TOKEN)", exitCode: 2) }
        let (items, rowErrors, statePath) = try readInputs()
        let stateFile = state ?? statePath
        let reportFile =
            report ?? (stateFile.hasSuffix(".state.jsonl") ? String(stateFile.dropLast(".state.jsonl".count)) : stateFile) + ".report.jsonl"

        let journal: IngestJournal
        do {
            journal = try IngestJournal(path: stateFile)
        } catch {
            throw Failure((error as? MediaError)?.message ?? "\(error)", exitCode: 2)
        }
        guard FileManager.default.createFile(atPath: reportFile, contents: nil), let reportHandle = FileHandle(forWritingAtPath: reportFile) else {
            throw Failure("cannot write the report \(reportFile)", exitCode: 2)
        }
        let reportWriter = Mutex(ReportWriter(handle: reportHandle))
        let onResult: @Sendable (IngestResult) -> Void = { result in reportWriter.withLock { $0.write(result) } }
        let ingestOptions = IngestOptions(jobs: jobs, dryRun: dryRun)

        // 2. run it against the chosen target, with progress on stderr
        let final: IngestProgress
        if let gateway, let serviceToken {
            let logger = try Self.logger(environment)
            guard let url = URL(string: gateway), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw Failure("--gateway must be an http(s) URL", exitCode: 2)
            }
            let runner = IngestRunner(
                target: RemoteIngestTarget(baseURL: gateway, serviceToken: serviceToken),
                journal: journal,
                options: ingestOptions,
                logger: logger,
                onResult: onResult
            )
            final = await MediaTracing.withExporter(logger: logger) { () async -> IngestProgress in
                await withProgress(runner) { await runner.run(items, rowErrors: rowErrors) }
            }
        } else {
            let logger = try Self.logger(environment)
            let configuration: DirectIngestConfiguration
            do {
                configuration = try DirectIngestConfiguration(environment: environment)
            } catch {
                throw Failure("configuration: \(error.message)", exitCode: 2)
            }
            let mode = progressMode
            do {
                // the runtime's run sends the spans
                final = try await DirectIngest.withTarget(configuration, logger: logger) { target in
                    let runner = IngestRunner(target: target, journal: journal, options: ingestOptions, logger: logger, onResult: onResult)
                    return await Self.withProgress(runner, mode: mode) { await runner.run(items, rowErrors: rowErrors) }
                }
            } catch {
                throw Failure(SystemCheck.oneLine(error))
            }
        }
        await journal.close()
        reportWriter.withLock { $0.close() }

        // 3. the summary, written at once (not buffered) so that it comes before an error line on stderr;
        // exit 1 when anything was refused or failed
        FileHandle.standardOutput.write(Data("\(Self.summary(final, dryRun: dryRun))\nreport: \(reportFile)\nstate: \(stateFile)\n".utf8))
        if final[.refused] + final[.failed] > 0 {
            throw Failure("\(final[.refused]) refused, \(final[.failed]) failed: see \(reportFile)", exitCode: 1)
        }
    }

    static func logger(_ environment: EnvironmentReader) throws(Failure) -> Logger {
        do {
            return try MediaLogging.bootstrap(
                try LoggingConfiguration(environment: environment, default: .warning),
                tracing: try TracingConfiguration(environment: environment, serviceName: "mediagw-ingest")
            )
        } catch {
            throw Failure("configuration: \(error.message)", exitCode: 2)
        }
    }

    /// The items, the manifest rows that could not be read, and the default state file.
    private func readInputs() throws(Failure) -> ([IngestItem], [ManifestRowError], String) {
        if let manifest {
            guard let format = IngestManifest.format(ofPath: manifest) else {
                throw Failure("the manifest must be a .csv or .jsonl file", exitCode: 2)
            }
            guard let text = try? String(contentsOfFile: manifest, encoding: .utf8) else {
                throw Failure("cannot read the manifest \(manifest)", exitCode: 2)
            }
            let parsed: (items: [IngestItem], errors: [ManifestRowError])
            do {
                parsed = try IngestManifest.parse(text, format: format)
            } catch {
                throw Failure("manifest \(manifest): \(error.message)", exitCode: 2)
            }
            let base = (manifest as NSString).deletingLastPathComponent
            let items = parsed.items.map { item in
                var item = item
                if !item.path.hasPrefix("/") { item.path = ((base.isEmpty ? "." : base) as NSString).appendingPathComponent(item.path) }
                return item
            }
            return (items, parsed.errors, manifest + ".state.jsonl")
        }
        let root = URL(fileURLWithPath: directory!).standardizedFileURL.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw Failure("\(directory!) is not a directory", exitCode: 2)
        }
        guard let uploadContext = UploadContext(rawValue: context) else {
            throw Failure("--context must be one of \(UploadContext.allCases.map(\.rawValue).joined(separator: ", "))", exitCode: 2)
        }
        do {
            try ExternalID.validate(owner, name: "--owner")
            if let contextID { try ExternalID.validate(contextID, name: "--context-id") }
        } catch {
            throw Failure(error.message, exitCode: 2)
        }
        let files = IngestDirectory.files(under: root)
        let items = files.map { relative in
            IngestItem(
                path: (root as NSString).appendingPathComponent(relative),
                destination: IngestDestination(
                    ownerID: owner,
                    context: uploadContext,
                    contextID: contextID ?? IngestDirectory.contextID(for: relative),
                    isPrivate: isPrivate
                )
            )
        }
        return (items, [], root + ".ingest.state.jsonl")
    }

    /// `bar` on a terminal, `lines` otherwise, unless chosen.
    private var progressMode: String {
        progress == "auto" ? (isatty(STDERR_FILENO) == 1 ? "bar" : "lines") : progress
    }

    private func withProgress<T: IngestTarget>(_ runner: IngestRunner<T>, _ body: () async -> IngestProgress) async -> IngestProgress {
        await Self.withProgress(runner, mode: progressMode, body)
    }

    /// Runs `body` while a progress display on stderr follows the runner.
    private static func withProgress<T: IngestTarget>(
        _ runner: IngestRunner<T>,
        mode: String,
        _ body: () async -> IngestProgress
    ) async -> IngestProgress {
        guard mode != "none" else { return await body() }
        let display = Task {
            let interval: Duration = mode == "bar" ? .milliseconds(200) : .seconds(5)
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                if Task.isCancelled { break }
                let line = ProgressLine.render(runner.progress)
                FileHandle.standardError.write(Data((mode == "bar" ? "\r\u{1B}[2K" + line : line + "\n").utf8))
            }
        }
        let result = await body()
        display.cancel()
        _ = await display.result
        FileHandle.standardError.write(Data(((mode == "bar" ? "\r\u{1B}[2K" : "") + ProgressLine.render(result) + "\n").utf8))
        return result
    }

    static func summary(_ progress: IngestProgress, dryRun: Bool) -> String {
        func reasons(_ outcome: IngestOutcome) -> String {
            let counts = progress.reasons[outcome] ?? [:]
            guard !counts.isEmpty else { return "" }
            return " (" + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
        }
        var parts = dryRun ? ["would ingest \(progress[.wouldIngest])"] : ["ingested \(progress[.ingested])"]
        parts.append("skipped as already done \(progress[.skipped])")
        parts.append("refused \(progress[.refused])\(reasons(.refused))")
        parts.append("failed \(progress[.failed])\(reasons(.failed))")
        return parts.joined(separator: ", ")
    }
}

/// Appends report lines.
struct ReportWriter {
    let handle: FileHandle
    let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    func write(_ result: IngestResult) {
        guard var line = try? encoder.encode(result) else { return }
        line.append(0x0A)
        handle.write(line)
    }

    func close() {
        try? handle.close()
    }
}

/// One line of progress: files and bytes done, rate, ETA, refusals and failures so far.
enum ProgressLine {
    static func render(_ progress: IngestProgress) -> String {
        let seconds = max(0.001, progress.elapsed.seconds)
        let rate = Double(progress.bytesDone) / seconds
        let remaining = Double(progress.bytesTotal - progress.bytesDone)
        let eta = rate > 0 ? Self.duration(remaining / rate) : "?"
        let fraction = progress.filesTotal > 0 ? Double(progress.filesDone) / Double(progress.filesTotal) : 1
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        return "[\(bar)] \(progress.filesDone)/\(progress.filesTotal) files, \(mb(progress.bytesDone))/\(mb(progress.bytesTotal)) MB, "
            + "\(String(format: "%.1f", rate / 1e6)) MB/s, \(String(format: "%.1f", Double(progress.filesDone) / seconds)) files/s, ETA \(eta), "
            + "refused \(progress[.refused]), failed \(progress[.failed])"
    }

    static func mb(_ bytes: Int64) -> String { String(format: "%.1f", Double(bytes) / 1e6) }

    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        return total >= 3600 ? "\(total / 3600)h\(total % 3600 / 60)m" : total >= 60 ? "\(total / 60)m\(total % 60)s" : "\(total)s"
    }
}
