import ArgumentParser
import Foundation
import Logging
import MediaApp
import MediaClient
import MediaCore
import MediaIngest
import Synchronization

/// `mediagw ingest`: bulk import of existing media, resumable, with progress and a report.
struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Import a directory (recursively) or a manifest of files: resumable, idempotent, with progress and a JSONL report.",
        discussion: """
            Directly into Ceph and PostgreSQL (the MEDIAGW_* settings of the gateway), or through a running gateway \
            with --gateway and --token. Re-running the same command skips what is done (state file). \
            Exit codes: 0 all ingested or skipped, 1 some files refused or failed (see the report), 2 usage or configuration error.
            """
    )

    @Argument(help: "A directory to import recursively (hidden files are skipped).")
    var directory: String?
    @Option(help: "A manifest instead of a directory: .csv with a header path,owner_id,context,context_id[,private], or .jsonl with those keys.")
    var manifest: String?
    @Option(help: "Directory mode: the owner of every file.")
    var owner = "ingest"
    @Option(help: "Directory mode: the context of every file (post, profile, community, message).")
    var context = "community"
    @Option(help: "Directory mode: one context id for every file (its limits apply to them together); by default each file gets its own, derived from its path.")
    var contextID: String?
    @Flag(name: .customLong("private"), help: "Directory mode: serve the files through signed URLs only.")
    var isPrivate = false
    @Option(help: "Ingest through this running gateway (http://host:port) instead of directly.")
    var gateway: String?
    @Option(help: "The gateway's service token (or MEDIAGW_INGEST_TOKEN).")
    var token: String?
    @Option(name: [.short, .long], help: "Files in flight at once (default: 4 per core).")
    var jobs = IngestOptions.defaultJobs
    @Option(help: "The state file that makes re-runs resumable (default: next to the manifest, or beside the directory).")
    var state: String?
    @Option(help: "The JSONL report, one line per input file (default: the state file's name with .report.jsonl).")
    var report: String?
    @Flag(help: "Read and hash everything, report what would happen, store nothing.")
    var dryRun = false
    @Option(help: "Progress display: auto (a bar on a terminal, lines otherwise), bar, lines, none.")
    var progress = "auto"
    @OptionGroup var options: ConnectionOptions

    func run() async throws {
        do {
            try await ingest()
        } catch let failure as Failure {
            Self.exit(with: failure)
        }
    }

    private func ingest() async throws {
        // 1. what to ingest; every usage problem is one line and exit code 2
        guard (directory == nil) != (manifest == nil) else { throw Failure("give either a directory or --manifest FILE", exitCode: 2) }
        guard (1...512).contains(jobs) else { throw Failure("--jobs must be between 1 and 512", exitCode: 2) }
        guard ["auto", "bar", "lines", "none"].contains(progress) else { throw Failure("--progress must be auto, bar, lines or none", exitCode: 2) }
        let serviceToken = token ?? ProcessInfo.processInfo.environment["MEDIAGW_INGEST_TOKEN"]
        if gateway != nil && serviceToken == nil { throw Failure("--gateway needs --token (or MEDIAGW_INGEST_TOKEN)", exitCode: 2) }
        let (items, rowErrors, statePath) = try readInputs()
        let stateFile = state ?? statePath
        let reportFile = report ?? (stateFile.hasSuffix(".state.jsonl") ? String(stateFile.dropLast(".state.jsonl".count)) : stateFile) + ".report.jsonl"

        let journal: IngestJournal
        do {
            journal = try IngestJournal(path: stateFile)
        } catch let error as MediaError {
            throw Failure(error.message, exitCode: 2)
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
            let logger = Self.bootstrapLogging(level: .warning)
            guard let url = URL(string: gateway), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw Failure("--gateway must be an http(s) URL", exitCode: 2)
            }
            let runner = IngestRunner(target: RemoteIngestTarget(baseURL: gateway, serviceToken: serviceToken), journal: journal,
                                      options: ingestOptions, logger: logger, onResult: onResult)
            final = await withProgress(runner) { await runner.run(items, rowErrors: rowErrors) }
        } else {
            let (configuration, logger) = try options.load(defaultLogLevel: .warning)
            let server: ServerConfiguration
            do {
                server = try ServerConfiguration(environment: options.environment)
            } catch {
                throw Failure("configuration: \(error.message)", exitCode: 2)
            }
            do {
                final = try await DirectIngest.withTarget(configuration: configuration, server: server, logger: logger) { target in
                    let runner = IngestRunner(target: target, journal: journal, options: ingestOptions, logger: logger, onResult: onResult)
                    return await withProgress(runner) { await runner.run(items, rowErrors: rowErrors) }
                }
            } catch {
                throw Failure(SystemCheck.oneLine(error))
            }
        }
        await journal.close()
        reportWriter.withLock { $0.close() }

        // 3. the summary; exit 1 when anything was refused or failed
        // written at once (not buffered), so that it comes before an error line on stderr
        FileHandle.standardOutput.write(Data("\(Self.summary(final, dryRun: dryRun))\nreport: \(reportFile)\nstate: \(stateFile)\n".utf8))
        if final[.refused] + final[.failed] > 0 {
            throw Failure("\(final[.refused]) refused, \(final[.failed]) failed: see \(reportFile)", exitCode: 1)
        }
    }

    /// The items, the manifest rows that could not be read, and the default state file.
    private func readInputs() throws -> ([IngestItem], [ManifestRowError], String) {
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
                    ownerID: owner, context: uploadContext, contextID: contextID ?? IngestDirectory.contextID(for: relative), isPrivate: isPrivate))
        }
        return (items, [], root + ".ingest.state.jsonl")
    }

    /// Runs `body` while a progress display on stderr follows the runner.
    private func withProgress<T: IngestTarget>(_ runner: IngestRunner<T>, _ body: () async -> IngestProgress) async -> IngestProgress {
        let mode = progress == "auto" ? (isatty(STDERR_FILENO) == 1 ? "bar" : "lines") : progress
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

    static func bootstrapLogging(level: Logger.Level) -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "mediagw")
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
        let seconds = max(0.001, Double(progress.elapsed.components.seconds) + Double(progress.elapsed.components.attoseconds) / 1e18)
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
