import ArgumentParser
import AsyncHTTPClient
import Foundation
import MediaApp
import NIOCore
import NIOHTTP1

/// The cost of resumability: the same 10 MB video uploaded by multipart (one request) and by tus in 5 MiB
/// and 1 MiB chunks, by the same number of concurrent clients, in one run, against one release gateway
/// (processing off, so that only the upload path is measured): MB/s, and CPU seconds per GB of the
/// gateway, PostgreSQL and the OSD.
struct ResumableBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resumable",
        abstract: "A 10 MB video by multipart vs tus in 5 MiB and 1 MiB chunks: MB/s and CPU per GB."
    )

    @Option(help: "Files uploaded per mode and round.")
    var files = 16
    @Option(help: "Concurrent clients.")
    var clients = 4
    @Option(help: "Rounds (the modes' order alternates; medians are reported).")
    var rounds = 3

    enum Mode: String, CaseIterable {
        case multipart
        case tus5 = "tus, 5 MiB chunks"
        case tus1 = "tus, 1 MiB chunks"

        var chunk: Int? {
            switch self {
            case .multipart: nil
            case .tus5: 5 << 20
            case .tus1: 1 << 20
            }
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        guard let serviceToken = stackServiceToken(environment) else { throw BenchError("run `eval \"$(Deploy/local/stack env)\"` first") }
        var gatewayEnvironment = environment
        gatewayEnvironment["MEDIAGW_LIMIT_COMMUNITY_VIDEO"] = "1000:10MiB"
        gatewayEnvironment["MEDIAGW_WORKERS_IN_SERVE"] = "false"
        let scratch = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let videoFile = scratch.appendingPathComponent("video.mp4")
        try OriginBench.generateVideo(videoFile, size: 9_800_000)
        let video = ByteBuffer(bytes: try Data(contentsOf: videoFile))
        let gateway = try BenchGateway(binary: mediagwBinary, environment: gatewayEnvironment)
        defer { gateway.stop() }
        let pid = gateway.process.processIdentifier
        let meter = CPUMeter(servers: [CPUMeter.Server(name: "gateway") { [pid] }, StackProcess.pg.server, StackProcess.osd.server])
        print("resumable: \(video.readableBytes) B video, \(files) files per mode, \(clients) clients, \(rounds) rounds")

        var rates: [Mode: [Double]] = [:]
        var costs: [Mode: [[(String, Double)]]] = [:]
        for round in 0..<rounds {
            for mode in round % 2 == 0 ? Mode.allCases : Mode.allCases.reversed() {
                let sets = try gateway.openSets(files, context: "community", serviceToken: serviceToken)
                let before = meter.snapshot()
                let started = ContinuousClock.now
                let (base, clients) = (gateway.baseURL, self.clients)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for client in 0..<clients {
                        group.addTask {
                            for index in stride(from: client, to: sets.count, by: clients) {
                                try await Self.upload(video, mode: mode, into: sets[index], gateway: base)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let seconds = (ContinuousClock.now - started).seconds
                let bytes = Double(video.readableBytes * files)
                rates[mode, default: []].append(bytes / 1e6 / seconds)
                costs[mode, default: []].append(meter.snapshot().perGB(since: before, bytes: bytes, order: ["gateway", "PostgreSQL", "OSD"]))
            }
        }
        _ = try? runProcess([
            "psql", environment["MEDIAGW_DATABASE_URL"] ?? "", "-qc",
            "UPDATE upload_sets SET expires_at = now() WHERE owner_id = 'bench' AND state = 'draft'",
        ])
        _ = try? runProcess([mediagwBinary, "reconcile", "--grace", "0s"])

        let baseline = OriginBench.medianCPU(costs[.multipart] ?? []).first?.1 ?? .nan
        for mode in Mode.allCases {
            let cpu = OriginBench.medianCPU(costs[mode] ?? [])
            let gatewayCost = cpu.first?.1 ?? .nan
            print(
                "\(mode.rawValue):".padding(toLength: 22, withPad: " ", startingAt: 0)
                    + "\(format(median(rates[mode] ?? [0]))) MB/s (rounds \((rates[mode] ?? []).map { format($0) }.joined(separator: ", "))); "
                    + CPUMeter.describe(cpu) + "; gateway CPU / multipart's \(format(gatewayCost / baseline, 2))"
            )
        }
    }

    /// One file, by multipart or by tus in chunks (creation, then one PATCH per chunk).
    static func upload(_ file: ByteBuffer, mode: Mode, into set: (String, String), gateway: String) async throws {
        let (setID, token) = set
        guard let chunk = mode.chunk else {
            let boundary = "bench-\(UUID().uuidString)"
            var request = HTTPClientRequest(url: "\(gateway)/v1/upload-sets/\(setID)/media")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
            var body = ByteBuffer(
                string: "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"v.mp4\"\r\nContent-Type: video/mp4\r\n\r\n"
            )
            body.writeImmutableBuffer(file)
            body.writeString("\r\n--\(boundary)--\r\n")
            request.body = .bytes(body)
            try await expect(request, 201)
            return
        }
        var create = HTTPClientRequest(url: "\(gateway)/v1/upload-sets/\(setID)/tus")
        create.method = .POST
        create.headers.add(name: "Authorization", value: "Bearer \(token)")
        create.headers.add(name: "Tus-Resumable", value: "1.0.0")
        create.headers.add(name: "Upload-Length", value: "\(file.readableBytes)")
        let created = try await expect(create, 201)
        guard let location = created.first(name: "Location") else { throw BenchError("no Location") }
        var offset = 0
        while offset < file.readableBytes {
            let length = min(chunk, file.readableBytes - offset)
            var patch = HTTPClientRequest(url: gateway + location)
            patch.method = .PATCH
            patch.headers.add(name: "Authorization", value: "Bearer \(token)")
            patch.headers.add(name: "Tus-Resumable", value: "1.0.0")
            patch.headers.add(name: "Upload-Offset", value: "\(offset)")
            patch.headers.add(name: "Content-Type", value: "application/offset+octet-stream")
            patch.body = .bytes(file.getSlice(at: file.readerIndex + offset, length: length)!)
            try await expect(patch, 204)
            offset += length
        }
    }

    @discardableResult
    static func expect(_ request: HTTPClientRequest, _ status: Int) async throws -> HTTPHeaders {
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard response.status.code == status else {
            throw BenchError("\(request.method) \(request.url): \(response.status.code) \(String(buffer: body))")
        }
        return response.headers
    }
}
