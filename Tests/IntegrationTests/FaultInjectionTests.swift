import AsyncHTTPClient
import Foundation
import Logging
import MediaApp
import MediaCore
import MediaTesting
import NIOCore
import PostgresMetadata
import RadosStore
import Testing

/// Tests that stop, kill and restart parts of the real stack, or run gateways of their own whose workers
/// must be alone on the job queue. They run after the rest of the suite (`MEDIAGW_FAULT_TESTS=1`), one at
/// a time: every suite nested here inherits `.serialized`.
@Suite(.serialized, .enabled(if: TestStack.faultTestsEnabled, "set MEDIAGW_FAULT_TESTS=1 (Deploy/local/run-tests does)"))
enum FaultInjection {}

extension FaultInjection {
    @Suite struct StackFaults {
        /// Runs `body` on fresh connections to `slice`'s part of the stack, closed when it returns.
        func withStores<T: Sendable>(
            _ slice: Isolation,
            storage: (inout StorageConfiguration) -> Void = { _ in },
            _ body: @escaping @Sendable (MediaRuntime) async throws -> T
        ) async throws -> T {
            let reader = EnvironmentReader(slice.environment)
            var configuration = try StorageConfiguration(environment: reader)
            storage(&configuration)
            let runtime = try await MediaRuntime.connect(
                storage: configuration,
                database: try PostgresConfiguration(environment: reader),
                logger: TestStack.logger
            )
            return try await runtime.run(body)
        }

        @Test func anObjectAndARowSurviveARestartOfTheWholeStack() async throws {
            let slice = try await Isolation.suite("StackRestart")
            let object = ObjectLocation(pool: slice.pools.photo, key: uniqueKey())
            let content = patternBytes(count: 3 << 20, seed: 99)
            let mediaID = MediaID.generate()

            // write both, with connections that are closed before the stack goes down
            try await withStores(slice) { runtime in
                try await runtime.blobs.write(object, bytes: ByteBuffer(bytes: content), mode: .createExclusive)
                let set = try await runtime.metadata.createUploadSet(
                    NewUploadSet(ownerID: "restart", context: .post, contextID: "p", expiresAt: Date().addingTimeInterval(3600))
                )
                _ = try await runtime.metadata.recordUpload(
                    NewMedia(
                        id: mediaID,
                        kind: .photo,
                        ownerID: "restart",
                        uploadSetID: set.id,
                        size: Int64(content.count),
                        sha256: "00",
                        mime: "image/jpeg",
                        location: object
                    ),
                    maxCount: 5,
                    now: Date()
                )
            }

            #expect(try await TestStack.stack("down") == 0)
            #expect(try await TestStack.stack("up") == 0)

            let (back, media) = try await withStores(slice) { runtime in
                let back = try await runtime.blobs.read(object, range: nil).collect(upTo: 4 << 20)
                try await runtime.blobs.remove(object)
                return (Array(back.readableBytesView), try await runtime.metadata.media(mediaID))
            }
            #expect(back == content)
            #expect(media?.location == object)
        }

        @Test func radosOperationsTimeOutWhileTheOSDIsDownAndRecoverWhenItReturns() async throws {
            let slice = try await Isolation.suite("OSDDown")
            let shortTimeouts: (inout StorageConfiguration) -> Void = {
                $0.rados.operationTimeout = .seconds(4)
                $0.rados.objecterTimeout = .seconds(2)
            }
            try await withStores(slice, storage: shortTimeouts) { runtime in
                let store = runtime.blobs
                let object = ObjectLocation(pool: runtime.storagePools.photo, key: uniqueKey())
                try await store.write(object, bytes: ByteBuffer(string: "before"), mode: .createExclusive)

                #expect(try await TestStack.stack("kill", "osd") == 0)
                let started = ContinuousClock.now
                await expectBlobError(.timedOut) { _ = try await store.stat(object) }
                #expect(ContinuousClock.now - started < .seconds(15), "the op timeout bounds the wait")

                #expect(try await TestStack.stack("up") == 0)
                // the same client recovers by itself: no reconnect
                var recovered = false
                let deadline = ContinuousClock.now + .seconds(60)
                while !recovered && ContinuousClock.now < deadline {
                    recovered = (try? await store.stat(object))?.size == 6
                    if !recovered { try await Task.sleep(for: .milliseconds(500)) }
                }
                #expect(recovered)
                try await store.write(object, bytes: ByteBuffer(string: "after"), mode: .replace)
                #expect(try await store.read(object, range: nil).collect(upTo: 10) == ByteBuffer(string: "after"))
                try await store.remove(object)
            }
        }

        @Test func aStoppedPostgreSQLGivesUnavailableAndTheClientRecovers() async throws {
            let slice = try await Isolation.suite("PostgresDown")
            try await withStores(slice) { runtime in
                let store = runtime.metadata
                let set = try await store.createUploadSet(
                    NewUploadSet(ownerID: "pg-down", context: .post, contextID: "p", expiresAt: Date().addingTimeInterval(3600))
                )

                #expect(try await TestStack.stack("kill", "pg") == 0)
                let started = ContinuousClock.now
                await #expect {
                    _ = try await store.uploadSet(set.id)
                } throws: { error in
                    (error as? MetadataStoreError)?.isTransient == true
                }
                #expect(ContinuousClock.now - started < .seconds(15))

                #expect(try await TestStack.stack("up") == 0)
                var found: UploadSet?
                let deadline = ContinuousClock.now + .seconds(30)
                while found == nil && ContinuousClock.now < deadline {
                    found = try? await store.uploadSet(set.id)
                    if found == nil { try await Task.sleep(for: .milliseconds(250)) }
                }
                #expect(found?.id == set.id)
            }
        }
    }
}

/// The upload gateway under faults: a killed process, SIGTERM, dependencies that go away.
extension FaultInjection {
    @Suite struct GatewayFaults {
        /// Starts a streaming upload of `head` then waits; returns the task and the continuation that ends it.
        func startStreamingUpload(
            _ baseURL: String,
            _ set: TestGateway.OpenedSet,
            head: [UInt8],
            filename: String
        )
            -> (Task<HTTPClientResponse, any Error>, AsyncStream<ByteBuffer>.Continuation, String)
        {
            let boundary = "stream-\(UUID().uuidString)"
            let (stream, continuation) = AsyncStream<ByteBuffer>.makeStream()
            var request = HTTPClientRequest(url: baseURL + "/v1/upload-sets/\(set.id)/media")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(set.token)")
            request.headers.add(name: "Content-Type", value: "multipart/form-data; boundary=\(boundary)")
            request.body = .stream(stream, length: .unknown)
            let task = Task { try await HTTPClient.shared.execute(request, timeout: .seconds(120)) }
            continuation.yield(ByteBuffer(string: Multipart.partHeader(index: 0, filename: filename, boundary: boundary)))
            continuation.yield(ByteBuffer(bytes: head))
            return (task, continuation, boundary)
        }

        /// The rows of a set, straight from the database.
        func rows(of setID: String, in slice: Isolation) async throws -> [Media] {
            try await slice.metadata.media(inSet: try #require(UploadSetID(setID)))
        }

        @Test func killingTheGatewayMidUploadLeavesNothingTheReconcilerCannotSettle() async throws {
            let slice = try await Isolation.suite("GatewayKilled")
            let gateway = try await GatewayProcess.start(slice)
            let pools = try TestStack.pools()
            var sets: [TestGateway.OpenedSet] = []
            var streams: [(Task<HTTPClientResponse, any Error>, AsyncStream<ByteBuffer>.Continuation)] = []
            let opener = gateway
            // completed uploads before the crash
            for _ in 0..<3 {
                let set = try await opener.openSet()
                sets.append(set)
                let reply = try await TestGateway.Reply.upload(gateway.baseURL, set, [("done.jpg", fakeJPEG(40_000))])
                #expect(reply.status == 201)
            }
            // uploads in flight when the process dies
            for index in 0..<4 {
                let set = try await opener.openSet()
                sets.append(set)
                let (task, continuation, _) = startStreamingUpload(
                    gateway.baseURL,
                    set,
                    head: try fakeMP4(3 << 20, seed: UInt64(index)),
                    filename: "v.mp4"
                )
                streams.append((task, continuation))
            }
            try await eventually {
                for set in sets.suffix(4) where try await slice.listObjects(pool: pools.video, prefix: "\(set.id)/").isEmpty { return false }
                return true
            }
            gateway.signal(SIGKILL)
            #expect(await gateway.waitForExit(timeout: .seconds(10)) != nil)
            for (task, continuation) in streams {
                continuation.finish()
                _ = try? await task.value
            }
            // the crash left objects without rows
            var orphaned: [String] = []
            for set in sets.suffix(4) { orphaned += try await slice.listObjects(pool: pools.video, prefix: "\(set.id)/") }
            #expect(orphaned.count == 4)

            let (status, output) = try await TestStack.run(TestStack.mediagwPath, ["reconcile", "--grace", "0s"], environment: slice.environment)
            #expect(status == 0, "\(output)")
            #expect(output.contains("removed"), "\(output)")

            for set in sets {
                let rows = try await rows(of: set.id, in: slice)
                let objects =
                    try await slice.listObjects(pool: pools.photo, prefix: "\(set.id)/") + slice.listObjects(pool: pools.video, prefix: "\(set.id)/")
                // zero rows without objects, zero objects without rows
                #expect(Set(rows.map(\.location.key)) == Set(objects), "set \(set.id)")
            }
            for set in sets.prefix(3) {
                #expect(try await slice.listObjects(pool: pools.photo, prefix: "\(set.id)/").count == 1, "set \(set.id)")
            }
        }

        @Test func sigtermLetsAnInFlightUploadFinish() async throws {
            let slice = try await Isolation.suite("Sigterm")
            let gateway = try await GatewayProcess.start(slice, ["MEDIAGW_SHUTDOWN_TIMEOUT": "60s"])
            let set = try await gateway.openSet()
            let (task, continuation, boundary) = startStreamingUpload(gateway.baseURL, set, head: try fakeMP4(2 << 20), filename: "v.mp4")
            try await eventually { try await !slice.listObjects(pool: TestStack.pools().video, prefix: "\(set.id)/").isEmpty }
            gateway.signal(SIGTERM)
            try await Task.sleep(for: .milliseconds(500))
            #expect(gateway.process.isRunning, "the server waits for the upload in flight")
            continuation.yield(ByteBuffer(bytes: patternBytes(count: 1 << 20, seed: 5)))
            continuation.yield(ByteBuffer(string: "\r\n--\(boundary)--\r\n"))
            continuation.finish()
            let response = try await task.value
            #expect(response.status.code == 201)
            #expect(await gateway.waitForExit(timeout: .seconds(30)) == 0, "\(gateway.log)")
            let rows = try await rows(of: set.id, in: slice)
            #expect(rows.count == 1 && rows.first?.size == Int64(3 << 20))
            // the entry of the committed object was cleared before the Ceph connection closed
            #expect(!gateway.log.contains("could not clear a pending entry"), "\(gateway.log)")
            let pending = try await slice.ledger.stale(
                in: try TestStack.pools().video,
                registeredBefore: Date().addingTimeInterval(60),
                after: nil,
                limit: 1000
            )
            #expect(pending.records.filter { $0.ticket.location.key.hasPrefix("\(set.id)/") }.isEmpty, "no entry is left for the reconciler")
        }

        @Test func uploadsGet503WhileCephOrPostgreSQLIsDownAndRecoverAfter() async throws {
            let gateway = try await TestGateway.start(
                try await Isolation.suite("DependenciesDown"),
                ["MEDIAGW_CEPH_OP_TIMEOUT": "4s", "MEDIAGW_CEPH_OBJECTER_TIMEOUT": "2s"]
            )
            let photo = try TestStack.pools().photo

            // Ceph: the OSD dies
            let cephSet = try await gateway.openSet()
            #expect(try await TestStack.stack("kill", "osd") == 0)
            let started = ContinuousClock.now
            let refused = try await gateway.upload(cephSet, [("a.jpg", fakeJPEG(5000))])
            #expect(refused.status == 503, "\(refused.text)")
            #expect(refused.errorCode == "unavailable")
            #expect(refused.headers["Retry-After"].first != nil)
            #expect(ContinuousClock.now - started < .seconds(30))
            #expect(try await gateway.request(.GET, "/readyz", token: nil).status == 503)
            #expect(try await TestStack.stack("up") == 0)
            var recovered = 0
            for _ in 0..<60 where recovered != 201 {
                recovered = try await gateway.upload(cephSet, [("b.jpg", fakeJPEG(5000))]).status
                if recovered != 201 { try await Task.sleep(for: .seconds(1)) }
            }
            #expect(recovered == 201)

            // PostgreSQL dies: whether a commit cut off went through is unknown, so the bytes already in Ceph
            // stay until the reconciler, which asks the database for their row once it is back, removes them
            let pgSet = try await gateway.openSet()
            #expect(try await TestStack.stack("kill", "pg") == 0)
            let noDatabase = try await gateway.upload(pgSet, [("c.jpg", fakeJPEG(5000))])
            #expect(noDatabase.status == 503, "\(noDatabase.text)")
            #expect(noDatabase.headers["Retry-After"].first != nil)
            #expect(try await gateway.request(.GET, "/internal/v1/upload-sets/\(pgSet.id)").status == 503)
            #expect(try await TestStack.stack("up") == 0)
            let (status, output) = try await TestStack.run(
                TestStack.mediagwPath,
                ["reconcile", "--grace", "0s"],
                environment: gateway.isolation.environment
            )
            #expect(status == 0, "\(output)")
            #expect(try await gateway.listObjects(pool: photo, prefix: "\(pgSet.id)/").isEmpty, "no object without a row")
            #expect(try await rows(of: pgSet.id, in: gateway.isolation).isEmpty)
            recovered = 0
            for _ in 0..<60 where recovered != 201 {
                recovered = try await gateway.upload(pgSet, [("d.jpg", fakeJPEG(5000))]).status
                if recovered != 201 { try await Task.sleep(for: .seconds(1)) }
            }
            #expect(recovered == 201)
            #expect(try await gateway.request(.GET, "/readyz", token: nil).status == 200)
            await gateway.stop()
        }
    }

}

/// Processing under faults: workers killed mid-job, processors crashing, jobs running out of time.
/// Each test runs its own gateway processes, and no other worker runs meanwhile.
extension FaultInjection {
    @Suite struct ProcessingFaults {
        static let video = "video/mp4-h264-aac-bbb-10s.mp4"

        @Test func aWorkerKilledMidJobLeavesTheJobToAnotherAfterTheLease() async throws {
            let settings = ["MEDIAGW_WORKERS": "1", "MEDIAGW_JOB_TIMEOUT": "30s", "MEDIAGW_JOB_LEASE": "35s"]
            let slice = try await Isolation.suite("WorkerKilled")
            let first = try await GatewayProcess.start(slice, settings)
            let set = try await first.openSet()
            let id = try await first.upload(set, "clip.mp4", try Corpus.bytes(Self.video))
            _ = try await slice.waitForMedia(id) { $0.state == .processing }
            first.signal(SIGKILL)
            _ = await first.waitForExit(timeout: .seconds(10))
            for child in try first.processorPIDs() { kill(child, SIGKILL) }

            let started = ContinuousClock.now
            let second = try await GatewayProcess.start(slice, settings)
            let media = try await slice.waitForMedia(id, within: .seconds(120)) { $0.state == .ready || $0.state == .failed }
            #expect(media.state == .ready, "\(media.failureReason ?? "")")
            #expect(ContinuousClock.now - started > .seconds(20), "taken again only once the lease expired")
            let database = slice.metadata.database
            #expect(try await database.client.query("SELECT count(*) FROM jobs WHERE media_id = \(media.id.uuid)").decode(Int.self).reduce(0, +) == 0)
            second.signal(SIGTERM)
            #expect(await second.waitForExit(timeout: .seconds(60)) == 0)
        }

        @Test func aCrashingProcessorFailsOneAttemptNotTheWorker() async throws {
            let gateway = try await GatewayProcess.start(
                try await Isolation.suite("ProcessorCrash"),
                ["MEDIAGW_WORKERS": "1", "MEDIAGW_JOB_BACKOFF": "1s"]
            )
            let set = try await gateway.openSet()
            let id = try await gateway.upload(set, "clip.mp4", try Corpus.bytes(Self.video))
            _ = try await gateway.isolation.waitForMedia(id) { $0.state == .processing }
            var killed = false
            for _ in 0..<50 where !killed {
                if let child = try gateway.processorPIDs().first {
                    kill(child, SIGKILL)
                    killed = true
                } else {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            #expect(killed)
            let media = try await gateway.isolation.waitForMedia(id) { $0.state == .ready || $0.state == .failed }
            #expect(media.state == .ready, "the next attempt, in a new processor, succeeds: \(media.failureReason ?? "")")
            #expect(gateway.process.isRunning, "the worker survived")
            let database = gateway.isolation.metadata.database
            let events = try await database.client.query("SELECT type FROM outbox WHERE media_id = \(media.id.uuid) ORDER BY pos")
                .decode(String.self).reduce(into: [String]()) { $0.append($1) }
            #expect(events == ["media.stored", "media.ready"])
            gateway.signal(SIGTERM)
            #expect(await gateway.waitForExit(timeout: .seconds(60)) == 0)
        }

        @Test func aJobPastItsTimeoutFailsAndTheWorkerGoesOn() async throws {
            let gateway = try await GatewayProcess.start(
                try await Isolation.suite("JobTimeout"),
                ["MEDIAGW_WORKERS": "1", "MEDIAGW_JOB_TIMEOUT": "300ms", "MEDIAGW_JOB_LEASE": "30s", "MEDIAGW_JOB_ATTEMPTS": "1"]
            )
            let set = try await gateway.openSet()
            let slow = try await gateway.upload(set, "clip.mp4", try Corpus.bytes(Self.video))
            let failed = try await gateway.isolation.waitForMedia(slow) { $0.state == .failed || $0.state == .ready }
            #expect(failed.state == .failed)
            #expect(failed.failureReason?.hasPrefix("timed_out: ") == true, "\(failed.failureReason ?? "")")
            let photo = try await gateway.upload(set, "a.png", try Corpus.bytes("images/png-palette-trns.png"))
            #expect(try await gateway.isolation.waitForMedia(photo) { $0.state == .ready || $0.state == .failed }.state == .ready)
            gateway.signal(SIGTERM)
            #expect(await gateway.waitForExit(timeout: .seconds(60)) == 0)
        }

        @Test func afterEveryHostileFileTheWorkerIsRunningAndItsMemoryBounded() async throws {
            let gateway = try await GatewayProcess.start(try await Isolation.suite("HostileFiles"), ["MEDIAGW_WORKERS": "2"])
            var ids: [String] = []
            let hostile = try Corpus.files().filter {
                ($0.hasPrefix("bad-images/") || $0.contains("/malformed-")) && UploadAPITests.expectedOutcome($0).status == 201
            }
            for path in hostile {
                let set = try await gateway.openSet(context: "community")
                ids.append(try await gateway.upload(set, URL(fileURLWithPath: path).lastPathComponent, try Corpus.bytes(path)))
            }
            for (path, id) in zip(hostile, ids) {
                let media = try await gateway.isolation.waitForMedia(id) { $0.state == .ready || $0.state == .failed }
                let expected = ProcessingTests.expectedState(path)
                #expect(media.state.rawValue == expected, "\(path): \(media.failureReason ?? "")")
                if expected == "failed" { #expect(media.failureReason?.isEmpty == false) }
            }
            #expect(gateway.process.isRunning)
            let gatewayMiB = GatewayProcess.residentMiB(gateway.process.processIdentifier)
            #expect(gatewayMiB < 300, "gateway RSS \(gatewayMiB) MiB")
            for child in try gateway.processorPIDs() {
                let childMiB = GatewayProcess.residentMiB(child)
                #expect(childMiB < 500, "processor RSS \(childMiB) MiB")
            }
            gateway.signal(SIGTERM)
            #expect(await gateway.waitForExit(timeout: .seconds(60)) == 0)
        }
    }
}
