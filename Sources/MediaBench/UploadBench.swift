import ArgumentParser
import Foundation
import MediaApp

/// 1 MB photo uploads through the gateway (multipart over HTTP, wrk) beside `rados bench` and radosgw S3
/// PUTs of the same size and concurrency on the same cluster, in one run; then the gateway's peak RSS
/// while 64 clients upload 10 MB videos.
struct UploadBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upload",
        abstract: "Gateway uploads vs rados bench and radosgw S3 PUT; peak RSS under 64 concurrent 10 MB uploads."
    )

    @Option(help: "Seconds per measurement.")
    var seconds = 10
    @Option(help: "Bytes per upload (a 1 MB photo).")
    var size = 1_000_000
    @Option(help: "Concurrent clients (connections).")
    var clients = 16
    @Option(help: "Concurrent clients of the memory phase.")
    var memoryClients = 64
    @Option(help: "Bytes per upload of the memory phase (a 10 MB video).")
    var memorySize = 10_000_000

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let serviceToken = stackServiceToken(environment),
            let s3 = environment["STACK_S3_ENDPOINT"]
        else {
            throw BenchError.needsRadosgw
        }
        try requireIdleJobQueue(environment)
        let configuration = try StorageConfiguration(environment: EnvironmentReader())
        var gatewayEnvironment = environment
        gatewayEnvironment["MEDIAGW_LIMIT_COMMUNITY_PHOTO"] = "1000000:1MiB"
        gatewayEnvironment["MEDIAGW_LIMIT_COMMUNITY_VIDEO"] = "1000000:10MiB"
        let scratch = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        print("upload: \(size) B per upload, \(clients) clients, \(seconds) s each; memory phase: \(memoryClients) clients x \(memorySize) B")

        // 1. the gateway
        let boundary = "mediagw-bench-boundary"
        let photo = [UInt8]([0xFF, 0xD8, 0xFF, 0xE0]) + (4..<size).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
        let photoBody = scratch.appendingPathComponent("photo.multipart")
        try Data(multipartBody(photo, filename: "bench.jpg", boundary: boundary)).write(to: photoBody)
        var gateway = try BenchGateway(binary: mediagwBinary, environment: gatewayEnvironment)
        let sets = try gateway.openSets(64, context: "community", serviceToken: serviceToken)
        let uploadScript = try multipartUploadScript(sets: sets, bodyFile: photoBody, boundary: boundary, in: scratch)
        let gatewayPID = gateway.process.processIdentifier
        let gatewayMeter = CPUMeter(servers: [
            CPUMeter.Server(name: "gateway") { [gatewayPID] }, StackProcess.osd.server, StackProcess.pg.server,
        ])
        let gatewayBefore = gatewayMeter.snapshot()
        let ours = try WrkResult.run(url: gateway.baseURL, script: uploadScript, connections: clients, seconds: seconds)
        let gatewayCPU = gatewayMeter.snapshot().perGB(
            since: gatewayBefore,
            bytes: Double(ours.requests) * Double(size),
            order: ["gateway", "OSD", "PostgreSQL"]
        )
        gateway.stop()
        guard ours.non2xx == 0 else { throw BenchError("\(ours.non2xx) uploads were refused") }
        let oursMB = ours.requestsPerSecond * Double(size) / 1e6

        // 2. rados bench, same object size and concurrency, same pool
        let osdMeter = CPUMeter(servers: [StackProcess.osd.server])
        let osdBefore = osdMeter.snapshot()
        let radosBench = try RadosBenchResult.run(
            configuration,
            pool: configuration.pools.photo,
            seconds: seconds,
            objectSize: size,
            concurrency: clients,
            runName: "mediagw-upload-bench"
        )
        let radosMB = radosBench.megabytesPerSecond
        let radosCPU = osdMeter.snapshot().perGB(since: osdBefore, bytes: radosMB * 1e6 * radosBench.seconds, order: ["OSD"])
        let radosLatency = radosBench.averageLatency

        // 3. radosgw S3 PUT (anonymous into a public-read-write bucket), same size and concurrency
        guard let bucket = S3Bucket(name: "mediagw-bench", environment: environment) else { throw BenchError("radosgw is not configured") }
        try bucket.create(acl: "public-read-write")
        let plainBody = scratch.appendingPathComponent("photo.bin")
        try Data(photo).write(to: plainBody)
        let putScript = scratch.appendingPathComponent("put.lua")
        try """
        local f = io.open("\(plainBody.path)", "rb")
        local body = f:read("*all")
        f:close()
        local threads = 0
        function setup(thread)
          threads = threads + 1
          thread:set("id", threads)
        end
        local n = 0
        request = function()
          n = n + 1
          return wrk.format("PUT", "/mediagw-bench/t" .. id .. "-" .. n, {["x-amz-acl"] = "public-read"}, body)
        end
        """.write(to: putScript, atomically: true, encoding: .utf8)
        let rgwMeter = CPUMeter(servers: [StackProcess.rgw.server, StackProcess.osd.server])
        let rgwBefore = rgwMeter.snapshot()
        let rgw = try WrkResult.run(url: s3, script: putScript.path, connections: clients, seconds: seconds)
        let rgwCPU = rgwMeter.snapshot().perGB(since: rgwBefore, bytes: Double(rgw.requests) * Double(size), order: ["radosgw", "OSD"])
        let rgwMB = rgw.requestsPerSecond * Double(size) / 1e6
        try? bucket.remove()

        // 4. peak RSS of a fresh gateway while many clients upload 10 MB videos
        let video =
            try Array(Data(contentsOf: URL(fileURLWithPath: "Tests/Fixtures/corpus/video/mp4-h264-aac-bbb-10s.mp4")).prefix(32))
            + (32..<memorySize).map { UInt8(truncatingIfNeeded: $0 &* 40_503 >> 7) }
        let videoBody = scratch.appendingPathComponent("video.multipart")
        try Data(multipartBody(video, filename: "bench.mp4", boundary: boundary)).write(to: videoBody)
        gateway = try BenchGateway(binary: mediagwBinary, environment: gatewayEnvironment)
        let idleRSS = gateway.peakRSS
        let videoSets = try gateway.openSets(memoryClients, context: "community", serviceToken: serviceToken)
        let videoScript = try multipartUploadScript(sets: videoSets, bodyFile: videoBody, boundary: boundary, in: scratch)
        let memory = try WrkResult.run(url: gateway.baseURL, script: videoScript, connections: memoryClients, threads: 2, seconds: seconds)
        let peak = gateway.peakRSS
        gateway.stop()

        // the benchmark's objects go again: expire its drafts, let the reconciler purge them
        _ = try? runProcess([
            "psql", environment["MEDIAGW_DATABASE_URL"] ?? "", "-qc",
            "UPDATE upload_sets SET expires_at = now() WHERE owner_id = 'bench' AND state = 'draft'",
        ])
        _ = try? runProcess([mediagwBinary, "reconcile", "--grace", "0s"])

        print(
            "gateway upload:  \(format(oursMB)) MB/s (\(format(ours.requestsPerSecond)) uploads/s), p50 \(format(ours.p50Milliseconds)) ms, p99 \(format(ours.p99Milliseconds)) ms, \(ours.requests) uploads, \(ours.errors) socket errors"
        )
        print("  CPU: \(CPUMeter.describe(gatewayCPU))")
        print("rados bench:     \(format(radosMB)) MB/s, average latency \(format(radosLatency * 1000)) ms")
        print("  CPU: \(CPUMeter.describe(radosCPU))")
        print(
            "radosgw S3 PUT:  \(format(rgwMB)) MB/s, p50 \(format(rgw.p50Milliseconds)) ms, p99 \(format(rgw.p99Milliseconds)) ms\(rgw.non2xx > 0 ? ", \(rgw.non2xx) non-2xx" : "")"
        )
        print("  CPU: \(CPUMeter.describe(rgwCPU))")
        if let ourCost = gatewayCPU.first(where: { $0.0 == "gateway" })?.1, let theirs = rgwCPU.first(where: { $0.0 == "radosgw" })?.1 {
            print("CPU per GB: gateway / radosgw \(format(ourCost / theirs, 2)) (target <= 0.5)")
        }
        print(
            "ratios: gateway / rados bench \(format(oursMB / radosMB, 2)) (a reference: no HTTP, hash or row), gateway / radosgw \(format(oursMB / rgwMB, 2)) (target >= 1.5)"
        )
        print(
            "memory: \(memoryClients) clients x \(memorySize) B: \(format(memory.requestsPerSecond * Double(memorySize) / 1e6)) MB/s, \(memory.non2xx) refused; gateway peak RSS \(format(peak)) MiB (idle \(format(idleRSS)) MiB; target <= 300 MB)"
        )
    }
}
