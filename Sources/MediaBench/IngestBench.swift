import ArgumentParser
import Foundation
import MediaApp

/// `mediagw ingest` in direct mode over generated photos, beside `rados bench` writing as many objects of
/// the same mean size with the same concurrency, in one run.
struct IngestBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "mediagw ingest (direct mode) of generated photos vs rados bench writing the same bytes."
    )

    @Option(help: "Photos to generate and ingest.")
    var files = 2000
    @Option(name: [.short, .long], help: "Concurrency of both (ingest -j, rados bench -t).")
    var jobs = 16

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard environment["MEDIAGW_DATABASE_URL"] != nil else {
            throw BenchError("run `Deploy/local/stack up` and `eval \"$(Deploy/local/stack env)\"` first")
        }
        let configuration = try StorageConfiguration(environment: EnvironmentReader())
        let scratch = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }

        // 1. photos of 300 KB to 1 MB
        let photos = scratch.appendingPathComponent("photos")
        let total = try generateIngestPhotos(files, in: photos, scratch: scratch)
        let mean = total / files
        print("ingest: \(files) photos, \(format(Double(total) / 1e6)) MB (mean \(mean) B), -j \(jobs)")

        // 2. mediagw ingest, direct mode, a fresh owner and state
        let owner = "bench-ingest-\(UUID().uuidString.prefix(8).lowercased())"
        let started = Date()
        var ingestEnvironment = environment
        ingestEnvironment["MEDIAGW_LOG_LEVEL"] = "error"
        let output = try runProcess(
            [
                mediagwBinary, "ingest", photos.path, "--owner", owner, "-j", "\(jobs)", "--progress", "none",
                "--state", scratch.appendingPathComponent("bench.state.jsonl").path,
            ],
            environment: ingestEnvironment
        )
        let seconds = Date().timeIntervalSince(started)
        guard output.contains("ingested \(files),") else { throw BenchError("not every photo was ingested:\n\(output)") }
        let oursMB = Double(total) / 1e6 / seconds

        // 3. rados bench: as many objects of the mean size, same concurrency, same pool
        let radosBench = try RadosBenchResult.run(
            configuration,
            pool: configuration.pools.photo,
            seconds: 600,
            objectSize: mean,
            concurrency: jobs,
            maxObjects: files,
            runName: "mediagw-ingest-bench"
        )
        let radosMB = radosBench.megabytesPerSecond
        let radosSeconds = radosBench.seconds

        // the benchmark's media go again: tombstoned, jobs dropped, objects purged by the reconciler
        let database = environment["MEDIAGW_DATABASE_URL"] ?? ""
        _ = try? runProcess([
            "psql", database, "-qc",
            """
            DELETE FROM jobs WHERE media_id IN (SELECT id FROM media WHERE owner_id = '\(owner)');
            UPDATE media SET state = 'deleted', deleted_at = now() WHERE owner_id = '\(owner)';
            """,
        ])
        _ = try? runProcess([mediagwBinary, "reconcile", "--grace", "0s"])

        print("mediagw ingest: \(format(Double(files) / seconds)) files/s, \(format(oursMB)) MB/s (\(format(seconds)) s)")
        print("rados bench:    \(format(Double(files) / radosSeconds)) objects/s, \(format(radosMB)) MB/s (\(format(radosSeconds)) s)")
        print("ratio: ingest / rados bench \(format(oursMB / radosMB, 2)) (target >= 0.8)")
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
