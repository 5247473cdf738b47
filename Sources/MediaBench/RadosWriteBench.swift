import ArgumentParser
import Foundation
import MediaApp

/// Writes objects through `RadosBlobStore` (the streaming write uploads use) with N in flight, beside
/// `rados bench write` with the same object size and concurrency against the same pool, in one run.
struct RadosWriteBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rados-write",
        abstract: "RadosStore streaming writes vs. rados bench write (MiB/s and the ratio)."
    )

    @Option(help: "Seconds rados bench writes; RadosStore then writes the same number of objects.")
    var seconds = 10
    @Option(help: "Object size in bytes.")
    var size = 1 << 20
    @Option(help: "Writes in flight.")
    var concurrency = 16
    @Option(help: "Size of the pieces the source yields (like HTTP body chunks).")
    var pieceSize = 64 << 10
    @Option(help: "Rounds; odd rounds run rados bench first, even rounds RadosStore first; medians are reported.")
    var rounds = 3
    @Option(help: "Pool (default: the photo pool).")
    var pool: String?
    @Flag(inversion: .prefixedNo, help: "Create objects exclusively, as uploads do (--no-exclusive: write-full).")
    var exclusive = true

    func run() async throws {
        let configuration = try StorageConfiguration(environment: EnvironmentReader())
        let pool = self.pool ?? configuration.pools.photo
        let runtime = try await MediaRuntime.connect(storage: configuration, database: nil, logger: Logger(label: "bench"))
        var references: [Double] = []
        var ours: [Double] = []
        print("rados-write: object size \(size) B, \(concurrency) in flight, pool \(pool), \(rounds) round(s)")
        for round in 1...rounds {
            let referenceRate: Double
            let objects: Int
            let rate: Double
            if round % 2 == 1 {
                (referenceRate, objects) = try radosBench(configuration, pool: pool)
                rate = try await storeWrite(runtime, pool: pool, objects: objects)
            } else {
                // same object count as the previous round, so the byte counts still match
                objects = Int(Double(seconds) * references.last! * Double(1 << 20) / Double(size))
                rate = try await storeWrite(runtime, pool: pool, objects: objects)
                (referenceRate, _) = try radosBench(configuration, pool: pool)
            }
            references.append(referenceRate)
            ours.append(rate)
            print(
                "round \(round): rados bench \(format(referenceRate)) MiB/s (\(objects) objects), RadosStore \(format(rate)) MiB/s, ratio \(format(rate / referenceRate, 2))"
            )
        }
        await runtime.close()
        let ratio = median(ours) / median(references)
        print(
            "result: RadosStore \(format(median(ours))) MiB/s, rados bench \(format(median(references))) MiB/s, ratio \(format(ratio, 2)) (target >= 0.90)"
        )
    }

    /// Runs `rados bench write` and returns its bandwidth and the number of objects it wrote.
    func radosBench(_ configuration: StorageConfiguration, pool: String) throws -> (Double, Int) {
        var base = ["rados", "-c", configuration.rados.configPath, "--id", configuration.rados.clientID]
        if let keyring = configuration.rados.keyringPath { base += ["--keyring", keyring] }
        let output = try runProcess(
            base + [
                "-p", pool, "bench", "\(seconds)", "write", "-b", "\(size)", "-t", "\(concurrency)", "--no-cleanup", "--run-name", "mediagw-bench",
            ]
        )
        _ = try runProcess(base + ["-p", pool, "cleanup", "--run-name", "mediagw-bench"])
        func value(_ label: String) -> Double? {
            output.split(separator: "\n").first { $0.hasPrefix(label) }
                .flatMap { Double($0.split(separator: ":").last!.trimmingCharacters(in: .whitespaces)) }
        }
        guard let bandwidth = value("Bandwidth (MB/sec)"), let writes = value("Total writes made") else {
            throw ValidationError("could not read rados bench output:\n\(output)")
        }
        return (bandwidth, Int(writes))
    }

    /// Writes `objects` objects through the store with `concurrency` in flight and returns MiB/s.
    func storeWrite(_ runtime: MediaRuntime, pool: String, objects: Int) async throws -> Double {
        let elapsed = try await runtime.timeStreamingWrites(
            pool: pool,
            objects: objects,
            size: size,
            pieceSize: pieceSize,
            concurrency: concurrency,
            exclusive: exclusive
        )
        return Double(objects * size) / Double(1 << 20) / elapsed.seconds
    }
}
