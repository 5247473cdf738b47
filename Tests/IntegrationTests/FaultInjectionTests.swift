import AsyncHTTPClient
import Foundation
import Logging
import MediaCore
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
        @Test func anObjectAndARowSurviveARestartOfTheWholeStack() async throws {
            let configuration = try TestStack.configuration()
            let object = ObjectLocation(pool: configuration.pools.photo, key: uniqueKey())
            let content = patternBytes(count: 3 << 20, seed: 99)
            let mediaID = MediaID.generate()

            // write both, with connections that are closed before the stack goes down
            let cluster = try await RadosCluster.connect(configuration.rados, pools: [object.pool], logger: TestStack.logger)
            try await RadosObjectStore(cluster: cluster).writeFull(object, bytes: ByteBuffer(bytes: content), mode: .createExclusive)
            await cluster.shutdown()
            let database = MetadataDatabase(configuration: configuration.postgres, logger: TestStack.logger)
            try await withRunningClient(database.client) {
                try await database.migrate()
                let store = PostgresMetadataStore(database: database, logger: TestStack.logger)
                let set = try await store.createUploadSet(NewUploadSet(ownerID: "restart", context: .post, contextID: "p", expiresAt: Date().addingTimeInterval(3600)))
                _ = try await store.recordUpload(NewMedia(
                    id: mediaID, kind: .photo, ownerID: "restart", uploadSetID: set.id, size: Int64(content.count),
                    sha256: "00", mime: "image/jpeg", location: object), maxCount: 5, now: Date())
            }

            #expect(try await TestStack.stack("down") == 0)
            #expect(try await TestStack.stack("up") == 0)

            let again = try await RadosCluster.connect(configuration.rados, pools: [object.pool], logger: TestStack.logger)
            let store = RadosObjectStore(cluster: again)
            let back = try await store.read(object, range: nil).collect(upTo: 4 << 20)
            #expect(Array(back.readableBytesView) == content)
            try await store.remove(object)
            await again.shutdown()
            let reopened = MetadataDatabase(configuration: configuration.postgres, logger: TestStack.logger)
            let media = try await withRunningClient(reopened.client) {
                try await PostgresMetadataStore(database: reopened, logger: TestStack.logger).media(mediaID)
            }
            #expect(media?.location == object)
        }

        @Test func radosOperationsTimeOutWhileTheOSDIsDownAndRecoverWhenItReturns() async throws {
            var configuration = try TestStack.configuration()
            configuration.rados.operationTimeout = .seconds(4)
            configuration.rados.objecterTimeout = .seconds(2)
            let pool = configuration.pools.photo
            let cluster = try await RadosCluster.connect(configuration.rados, pools: [pool], logger: TestStack.logger)
            let store = RadosObjectStore(cluster: cluster)
            let object = ObjectLocation(pool: pool, key: uniqueKey())
            try await store.writeFull(object, bytes: ByteBuffer(string: "before"), mode: .createExclusive)

            #expect(try await TestStack.stack("kill", "osd") == 0)
            let started = ContinuousClock.now
            await expectCode(.timedOut) { _ = try await store.stat(object) }
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
            try await store.writeFull(object, bytes: ByteBuffer(string: "after"), mode: .replace)
            #expect(try await store.read(object, range: nil).collect(upTo: 10) == ByteBuffer(string: "after"))
            try await store.remove(object)
            await cluster.shutdown()
        }

        @Test func aStoppedPostgreSQLGivesUnavailableAndTheClientRecovers() async throws {
            let configuration = try TestStack.configuration()
            let database = MetadataDatabase(configuration: configuration.postgres, logger: TestStack.logger)
            try await withRunningClient(database.client) {
                let store = PostgresMetadataStore(database: database, logger: TestStack.logger)
                let set = try await store.createUploadSet(NewUploadSet(ownerID: "pg-down", context: .post, contextID: "p", expiresAt: Date().addingTimeInterval(3600)))

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
        func startStreamingUpload(_ baseURL: String, _ set: TestGateway.OpenedSet, head: [UInt8], filename: String)
            -> (Task<HTTPClientResponse, any Error>, AsyncStream<ByteBuffer>.Continuation, String) {
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
        func rows(of setID: String) async throws -> [Media] {
            try await TestStack.metadataStore().media(inSet: try #require(UploadSetID(setID)))
        }

        @Test func killingTheGatewayMidUploadLeavesNothingTheReconcilerCannotSettle() async throws {
            let gateway = try await GatewayProcess.start()
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
                let (task, continuation, _) = startStreamingUpload(gateway.baseURL, set, head: try fakeMP4(3 << 20, seed: UInt64(index)), filename: "v.mp4")
                streams.append((task, continuation))
            }
            try await eventually {
                for set in sets.suffix(4) where try await listObjects(pool: pools.video, prefix: "\(set.id)/").isEmpty { return false }
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
            for set in sets.suffix(4) { orphaned += try await listObjects(pool: pools.video, prefix: "\(set.id)/") }
            #expect(orphaned.count == 4)

            let (status, output) = try await TestStack.run(TestStack.mediagwPath, ["reconcile", "--grace", "0s"])
            #expect(status == 0, "\(output)")
            #expect(output.contains("removed"), "\(output)")

            for set in sets {
                let rows = try await rows(of: set.id)
                let objects = try await listObjects(pool: pools.photo, prefix: "\(set.id)/") + listObjects(pool: pools.video, prefix: "\(set.id)/")
                // zero rows without objects, zero objects without rows
                #expect(Set(rows.map(\.location.key)) == Set(objects), "set \(set.id)")
            }
            for set in sets.prefix(3) {
                #expect(try await listObjects(pool: pools.photo, prefix: "\(set.id)/").count == 1, "set \(set.id)")
            }
        }

        @Test func sigtermLetsAnInFlightUploadFinish() async throws {
            let gateway = try await GatewayProcess.start(["MEDIAGW_SHUTDOWN_TIMEOUT": "60s"])
            let set = try await gateway.openSet()
            let (task, continuation, boundary) = startStreamingUpload(gateway.baseURL, set, head: try fakeMP4(2 << 20), filename: "v.mp4")
            try await eventually { try await !listObjects(pool: TestStack.pools().video, prefix: "\(set.id)/").isEmpty }
            gateway.signal(SIGTERM)
            try await Task.sleep(for: .milliseconds(500))
            #expect(gateway.process.isRunning, "the server waits for the upload in flight")
            continuation.yield(ByteBuffer(bytes: patternBytes(count: 1 << 20, seed: 5)))
            continuation.yield(ByteBuffer(string: "\r\n--\(boundary)--\r\n"))
            continuation.finish()
            let response = try await task.value
            #expect(response.status.code == 201)
            #expect(await gateway.waitForExit(timeout: .seconds(30)) == 0, "\(gateway.log)")
            let rows = try await rows(of: set.id)
            #expect(rows.count == 1 && rows.first?.size == Int64(3 << 20))
        }

        @Test func uploadsGet503WhileCephOrPostgreSQLIsDownAndRecoverAfter() async throws {
            let gateway = try await TestGateway.start(["MEDIAGW_CEPH_OP_TIMEOUT": "4s", "MEDIAGW_CEPH_OBJECTER_TIMEOUT": "2s"])
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

            // PostgreSQL dies: the bytes already in Ceph are removed again, no row appears
            let pgSet = try await gateway.openSet()
            #expect(try await TestStack.stack("kill", "pg") == 0)
            let noDatabase = try await gateway.upload(pgSet, [("c.jpg", fakeJPEG(5000))])
            #expect(noDatabase.status == 503, "\(noDatabase.text)")
            #expect(noDatabase.headers["Retry-After"].first != nil)
            #expect(try await gateway.request(.GET, "/internal/v1/upload-sets/\(pgSet.id)").status == 503)
            #expect(try await listObjects(pool: photo, prefix: "\(pgSet.id)/").isEmpty)
            #expect(try await TestStack.stack("up") == 0)
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
            let first = try await GatewayProcess.start(settings)
            let set = try await first.openSet()
            let id = try await first.upload(set, "clip.mp4", try Corpus.bytes(Self.video))
            _ = try await waitForMedia(id) { $0.state == .processing }
            first.signal(SIGKILL)
            _ = await first.waitForExit(timeout: .seconds(10))
            for child in first.processorPIDs { kill(child, SIGKILL) }

            let started = ContinuousClock.now
            let second = try await GatewayProcess.start(settings)
            let media = try await waitForMedia(id, within: .seconds(120)) { $0.state == .ready || $0.state == .failed }
            #expect(media.state == .ready, "\(media.failureReason ?? "")")
            #expect(ContinuousClock.now - started > .seconds(20), "taken again only once the lease expired")
            let database = try await TestStack.sharedDatabase.value
            #expect(try await database.client.query("SELECT count(*) FROM jobs WHERE media_id = \(media.id.uuid)").decode(Int.self).reduce(0, +) == 0)
            second.signal(SIGTERM)
            #expect(await second.waitForExit(timeout: .seconds(60)) == 0)
        }

        @Test func aCrashingProcessorFailsOneAttemptNotTheWorker() async throws {
            let gateway = try await GatewayProcess.start(["MEDIAGW_WORKERS": "1", "MEDIAGW_JOB_BACKOFF": "1s"])
            let set = try await gateway.openSet()
            let id = try await gateway.upload(set, "clip.mp4", try Corpus.bytes(Self.video))
            _ = try await waitForMedia(id) { $0.state == .processing }
            var killed = false
            for _ in 0..<50 where !killed {
                if let child = gateway.processorPIDs.first {
                    kill(child, SIGKILL)
                    killed = true
                } else {
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            #expect(killed)
            let media = try await waitForMedia(id) { $0.state == .ready || $0.state == .failed }
            #expect(media.state == .ready, "the next attempt, in a new processor, succeeds: \(media.failureReason ?? "")")
            #expect(gateway.process.isRunning, "the worker survived")
            let database = try await TestStack.sharedDatabase.value
            let events = try await database.client.query("SELECT type FROM outbox WHERE media_id = \(media.id.uuid) ORDER BY pos")
                .decode(String.self).reduce(into: [String]()) { $0.append($1) }
            #expect(events == ["media.stored", "media.ready"])
            gateway.signal(SIGTERM)
            #expect(await gateway.waitForExit(timeout: .seconds(60)) == 0)
        }

        @Test func aJobPastItsTimeoutFailsAndTheWorkerGoesOn() async throws {
            let gateway = try await GatewayProcess.start(["MEDIAGW_WORKERS": "1", "MEDIAGW_JOB_TIMEOUT": "300ms", "MEDIAGW_JOB_LEASE": "30s", "MEDIAGW_JOB_ATTEMPTS": "1"])
            let set = try await gateway.openSet()
            let slow = try await gateway.upload(set, "clip.mp4", try Corpus.bytes(Self.video))
            let failed = try await waitForMedia(slow) { $0.state == .failed || $0.state == .ready }
            #expect(failed.state == .failed)
            #expect(failed.failureReason?.hasPrefix("timed_out: ") == true, "\(failed.failureReason ?? "")")
            let photo = try await gateway.upload(set, "a.png", try Corpus.bytes("images/png-palette-trns.png"))
            #expect(try await waitForMedia(photo) { $0.state == .ready || $0.state == .failed }.state == .ready)
            gateway.signal(SIGTERM)
            #expect(await gateway.waitForExit(timeout: .seconds(60)) == 0)
        }

        @Test func afterEveryHostileFileTheWorkerIsRunningAndItsMemoryBounded() async throws {
            let gateway = try await GatewayProcess.start(["MEDIAGW_WORKERS": "2"])
            var ids: [String] = []
            let hostile = Corpus.files.filter { ($0.hasPrefix("bad-images/") || $0.contains("/malformed-")) && UploadAPITests.expectedOutcome($0).status == 201 }
            for path in hostile {
                let set = try await gateway.openSet(context: "community")
                ids.append(try await gateway.upload(set, URL(fileURLWithPath: path).lastPathComponent, try Corpus.bytes(path)))
            }
            for (path, id) in zip(hostile, ids) {
                let media = try await waitForMedia(id) { $0.state == .ready || $0.state == .failed }
                let expected = ProcessingTests.expectedState(path)
                #expect(media.state.rawValue == expected, "\(path): \(media.failureReason ?? "")")
                if expected == "failed" { #expect(media.failureReason?.isEmpty == false) }
            }
            #expect(gateway.process.isRunning)
            let gatewayMiB = GatewayProcess.residentMiB(gateway.process.processIdentifier)
            #expect(gatewayMiB < 300, "gateway RSS \(gatewayMiB) MiB")
            for child in gateway.processorPIDs {
                let childMiB = GatewayProcess.residentMiB(child)
                #expect(childMiB < 500, "processor RSS \(childMiB) MiB")
            }
            gateway.signal(SIGTERM)
            #expect(await gateway.waitForExit(timeout: .seconds(60)) == 0)
        }
    }
}
