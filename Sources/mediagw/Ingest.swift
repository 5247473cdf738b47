import ArgumentParser
import Foundation
import MediaApp

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
    @Option(
        help:
            "Directory mode: one context id for every file (its limits apply to them together); by default each file gets its own, derived from its path."
    )
    var contextID: String?
    @Flag(name: .customLong("private"), help: "Directory mode: serve the files through signed URLs only.")
    var isPrivate = false
    @Option(help: "Ingest through this running gateway (http://host:port) instead of directly.")
    var gateway: String?
    @Option(help: "The gateway's service token (or MEDIAGW_INGEST_TOKEN).")
    var token: String?
    @Option(name: [.short, .long], help: "Files in flight at once (default: 4 per core).")
    var jobs = IngestCommand.defaultJobs
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
        await failing {
            try await IngestCommand(
                directory: directory,
                manifest: manifest,
                owner: owner,
                context: context,
                contextID: contextID,
                isPrivate: isPrivate,
                gateway: gateway,
                token: token,
                jobs: jobs,
                state: state,
                report: report,
                dryRun: dryRun,
                progress: progress,
                environment: options.environment()
            ).run()
        }
    }
}
