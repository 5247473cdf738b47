import ArgumentParser
import Foundation
import MediaApp

/// `mediagw ingest` in direct mode over generated photos, with and without group commit (each twice), beside `rclone
/// copy` of the same directory into radosgw and `rados bench` writing as many objects of the same mean size,
/// all with the same concurrency, in one run; with the CPU seconds per GB of each process.
struct IngestBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "mediagw ingest (direct mode) of generated photos vs rclone into radosgw and rados bench writing the same bytes."
    )

    @Option(help: "Photos to generate and ingest.")
    var files = 2000
    @Option(name: [.short, .long], help: "Concurrency of all (ingest -j, rclone --transfers, rados bench -t).")
    var jobs = 16

    /// One run of one tool: its wall time and the CPU seconds of the processes that did the work.
    struct Run {
        var seconds: Double
        var cpu: [(String, Double)]

        func filesPerSecond(_ files: Int) -> Double { Double(files) / seconds }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard environment["MEDIAGW_DATABASE_URL"] != nil else {
            throw BenchError("run `Deploy/local/stack up rgw` and `eval \"$(Deploy/local/stack env)\"` first")
        }
        guard let bucket = S3Bucket(name: "mediagw-ingest-bench", environment: environment) else {
            throw BenchError("radosgw is not configured: `Deploy/local/stack up rgw`")
        }
        let configuration = try StorageConfiguration(environment: EnvironmentReader())
        let scratch = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }

        // 1. photos of 300 KB to 1 MB
        let photos = scratch.appendingPathComponent("photos")
        let total = try generateIngestPhotos(files, in: photos, scratch: scratch)
        let mean = total / files
        let gigabytes = Double(total) / 1e9
        print("ingest: \(files) photos, \(format(Double(total) / 1e6)) MB (mean \(mean) B), -j \(jobs)")
        let servers = CPUMeter(servers: [StackProcess.osd.server, StackProcess.pg.server, StackProcess.rgw.server])

        // 2. mediagw ingest, direct mode, with group commit (the default) and without, each a fresh owner
        var owners: [String] = []
        func ingest(groupCommit: Bool) throws -> Run {
            let owner = "bench-ingest-\(UUID().uuidString.prefix(8).lowercased())"
            owners.append(owner)
            var ingestEnvironment = environment
            ingestEnvironment["MEDIAGW_LOG_LEVEL"] = "error"
            ingestEnvironment["MEDIAGW_DATABASE_GROUP_COMMIT"] = groupCommit ? "true" : "false"
            // the dead rows of earlier runs (and of an earlier benchmark's clean-up) vacuumed first: their
            // autovacuum would otherwise count as this run's PostgreSQL CPU
            _ = try? runProcess(["psql", environment["MEDIAGW_DATABASE_URL"] ?? "", "-qc", "VACUUM (ANALYZE)"])
            let before = (servers.snapshot(), ChildCPU.seconds(), Date())
            let output = try runProcess(
                [
                    mediagwBinary, "ingest", photos.path, "--owner", owner, "-j", "\(jobs)", "--progress", "none",
                    "--state", scratch.appendingPathComponent("\(owner).state.jsonl").path,
                ],
                environment: ingestEnvironment
            )
            guard output.contains("ingested \(files),") else { throw BenchError("not every photo was ingested:\n\(output)") }
            let seconds = Date().timeIntervalSince(before.2)
            let ingestCPU = (ChildCPU.seconds() - before.1) / gigabytes
            return Run(
                seconds: seconds,
                cpu: [("ingest", ingestCPU)]
                    + servers.snapshot().perGB(since: before.0, bytes: Double(total), order: ["OSD", "PostgreSQL"])
            )
        }
        // the photos' pages written out first, so that no run pays for the flush; then each mode twice, in
        // the order A B B A, and the faster run of each (the other is printed too)
        _ = try runProcess(["sync"])
        let firstSingle = try ingest(groupCommit: false)
        let firstGrouped = try ingest(groupCommit: true)
        let secondGrouped = try ingest(groupCommit: true)
        let secondSingle = try ingest(groupCommit: false)
        let grouped = firstGrouped.seconds < secondGrouped.seconds ? firstGrouped : secondGrouped
        let single = firstSingle.seconds < secondSingle.seconds ? firstSingle : secondSingle
        print(
            "  runs (files/s): no group commit \(format(firstSingle.filesPerSecond(files))), \(format(secondSingle.filesPerSecond(files))); "
                + "group commit \(format(firstGrouped.filesPerSecond(files))), \(format(secondGrouped.filesPerSecond(files)))"
        )

        // 3. rclone copy of the same directory into a radosgw bucket, same concurrency
        try bucket.create(acl: "private")
        // the remote is defined by variables alone; AWS_* of the caller (a CA bundle for https) would change it
        var rcloneEnvironment = environment.filter { !$0.key.hasPrefix("AWS_") }
        rcloneEnvironment["RCLONE_CONFIG"] = "/dev/null"
        for (name, value) in bucket.rcloneRemote(named: "RGW") { rcloneEnvironment[name] = value }
        let rcloneBefore = (servers.snapshot(), ChildCPU.seconds(), Date())
        _ = try runProcess(
            ["rclone", "copy", photos.path, "rgw:\(bucket.name)", "--transfers", "\(jobs)", "--checkers", "\(jobs)", "--s3-upload-concurrency", "1"],
            environment: rcloneEnvironment
        )
        let rclone = Run(
            seconds: Date().timeIntervalSince(rcloneBefore.2),
            cpu: [("rclone", (ChildCPU.seconds() - rcloneBefore.1) / gigabytes)]
                + servers.snapshot().perGB(since: rcloneBefore.0, bytes: Double(total), order: ["radosgw", "OSD"])
        )
        let stored = try runProcess(["rclone", "size", "rgw:\(bucket.name)", "--json"], environment: rcloneEnvironment)
        guard stored.contains("\"count\":\(files)") else { throw BenchError("rclone did not store every photo: \(stored)") }
        try? bucket.remove()

        // 4. rados bench: as many objects of the mean size, same concurrency, same pool
        let radosBefore = servers.snapshot()
        let radosBench = try RadosBenchResult.run(
            configuration,
            pool: configuration.pools.photo,
            seconds: 600,
            objectSize: mean,
            concurrency: jobs,
            maxObjects: files,
            runName: "mediagw-ingest-bench"
        )
        let radosCPU = servers.snapshot().perGB(since: radosBefore, bytes: Double(files * mean), order: ["OSD"])

        // the benchmark's media go again: tombstoned, jobs dropped, objects purged by the reconciler
        let database = environment["MEDIAGW_DATABASE_URL"] ?? ""
        for owner in owners {
            _ = try? runProcess([
                "psql", database, "-qc",
                """
                DELETE FROM jobs WHERE media_id IN (SELECT id FROM media WHERE owner_id = '\(owner)');
                UPDATE media SET state = 'deleted', deleted_at = now() WHERE owner_id = '\(owner)';
                """,
            ])
        }
        _ = try? runProcess([mediagwBinary, "reconcile", "--grace", "0s"])

        func line(_ name: String, _ run: Run) -> String {
            "\(name)\(format(run.filesPerSecond(files))) files/s, \(format(Double(total) / 1e6 / run.seconds)) MB/s (\(format(run.seconds)) s); "
                + CPUMeter.describe(run.cpu)
        }
        print(line("mediagw ingest (group commit):    ", grouped))
        print(line("  without group commit:           ", single))
        print(line("rclone copy into radosgw:         ", rclone))
        print(
            "rados bench:                      \(format(Double(files) / radosBench.seconds)) objects/s, \(format(radosBench.megabytesPerSecond)) MB/s "
                + "(\(format(radosBench.seconds)) s); \(CPUMeter.describe(radosCPU))"
        )
        print(
            "ratios: ingest / rclone files/s \(format(grouped.filesPerSecond(files) / rclone.filesPerSecond(files), 2)) (target >= 2), "
                + "ingest / rados bench \(format(grouped.filesPerSecond(files) / (Double(files) / radosBench.seconds), 2)) (target >= 0.5), "
                + "without group commit / rclone \(format(single.filesPerSecond(files) / rclone.filesPerSecond(files), 2)), "
                + "group commit / none \(format(grouped.filesPerSecond(files) / single.filesPerSecond(files), 2))"
        )
    }
}

/// CPU seconds of this process's children that have exited and been waited for (the tool it ran).
enum ChildCPU {
    static func seconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}

/// Writes `count` distinct JPEG photos of 300 KB to 1 MB into `directory`: a few real JPEGs of different
/// detail, each copy made unique by a trailer of its own after the image (still a valid JPEG, another
/// content hash). Returns their total size.
func generateIngestPhotos(_ count: Int, in directory: URL, scratch: URL) throws -> Int {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    var bases: [[UInt8]] = []
    for (index, noise) in [8, 14, 20, 28, 36, 44].enumerated() {
        let file = scratch.appendingPathComponent("base\(index).jpg")
        _ = try runProcess([
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1600x1200",
            "-vf", "noise=alls=\(noise):allf=u", "-frames:v", "1", "-q:v", "4", file.path,
        ])
        let bytes = [UInt8](try Data(contentsOf: file))
        if (250_000...900_000).contains(bytes.count) { bases.append(bytes) }
    }
    guard !bases.isEmpty else { throw BenchError("could not generate photos of 300 KB to 1 MB") }
    var total = 0
    let pool = (0..<1_000_000).map { _ in UInt8.random(in: 0...255) }
    for index in 0..<count {
        let base = bases[index % bases.count]
        let target = Int.random(in: max(300_000, base.count + 16)...1_000_000)
        var bytes = base + withUnsafeBytes(of: UInt64(index).bigEndian, Array.init)
        let offset = Int.random(in: 0..<(pool.count - (target - bytes.count)))
        bytes += pool[offset..<offset + (target - bytes.count)]
        try Data(bytes).write(to: directory.appendingPathComponent(String(format: "photo-%05d.jpg", index)))
        total += bytes.count
    }
    return total
}
