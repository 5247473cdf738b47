import Foundation
import MediaCore
import MediaTesting
import Testing

/// The pure logic of the correlation: ids, the recorder's batches, a request's scope. The recorder is one
/// per process: these tests install theirs in turn and look at their own ids only.
@Suite(.serialized) struct CorrelationTests {
    @Test func aBareIdIsTriedAsEveryKindItMayBe() {
        let uuid = UUID()
        let lower = uuid.uuidString.lowercased()
        #expect(
            CorrelationNode.candidates(for: uuid.uuidString).map(\.description) == [
                "set:\(lower)", "media:\(lower)", "event:\(lower)", "request:\(uuid.uuidString)",
            ]
        )
        #expect(CorrelationNode.candidates(for: "1234") == [CorrelationNode(.job, "1234")])
        let hex = String(repeating: "ab", count: 16)
        #expect(CorrelationNode.candidates(for: hex.uppercased()).map(\.description) == ["trace:\(hex)", "request:\(hex.uppercased())"])
        #expect(CorrelationNode.candidates(for: "media:\(lower)") == [CorrelationNode(.media, lower)])
        #expect(CorrelationNode.candidates(for: "support-case-42") == [CorrelationNode(.request, "support-case-42")])
        #expect(CorrelationNode.candidates(for: " ").isEmpty)
        #expect(CorrelationNode("nothing:1") == nil && CorrelationNode("media:") == nil)
    }

    @Test func theRecorderHoldsAtMostItsCapacityAndWritesOneBatch() async throws {
        let recorder = CorrelationRecorder(host: "h", capacity: 3)
        let store = InMemoryCorrelationStore()
        let links = (0..<5).map { CorrelationLink(from: .media(.generate()), to: .job(Int64($0)), relation: "r", at: Date(), host: "h") }
        recorder.record(links)
        #expect(recorder.pending == 3, "the rest is dropped, never waited for")
        #expect(await recorder.flush(to: store, logger: .init(label: "test")) == 3)
        #expect(store.links == Array(links.prefix(3)))
        #expect(recorder.pending == 0)
        #expect(await recorder.flush(to: store, logger: .init(label: "test")) == 0)
    }

    @Test func aBatchTheStoreRefusesIsDroppedNotKept() async throws {
        let recorder = CorrelationRecorder(host: "h")
        // a store whose days are all in the past refuses today's links
        let store = InMemoryCorrelationStore(daysFrom: .distantPast, through: Date(timeIntervalSince1970: 0))
        recorder.record([CorrelationLink(from: .job(1), to: .job(2), relation: "r", at: Date(), host: "h")])
        #expect(await recorder.flush(to: store, logger: .init(label: "test")) == 0)
        #expect(recorder.pending == 0 && store.links.isEmpty)
    }

    @Test func aRequestLinksWhatItTouchedToItsIdTraceAndCallerOnceAnswered() async throws {
        let recorder = CorrelationRecorder(host: "gw-1")
        Correlation.bootstrap(recorder)
        defer { Correlation.bootstrap(nil) }
        let media = CorrelationNode.media(.generate())
        let set = CorrelationNode.set(.generate())
        let scope = RequestCorrelation(requestID: "r-\(UUID())", callerRequestID: "caller-7", traceID: String(repeating: "1", count: 32))
        await Correlation.withRequest(scope) {
            Correlation.note(media, "stored")
            Correlation.note(set, "refused a file", error: "too_large: over 1 MB")
        }
        let store = InMemoryCorrelationStore()
        await recorder.flush(to: store, logger: .init(label: "test"))
        #expect(!store.links.contains { $0.from == CorrelationNode(.request, scope.requestID) }, "nothing before the answer")
        scope.finish(route: "POST /v1/upload-sets/{id}/media", status: 201)
        await recorder.flush(to: store, logger: .init(label: "test"))
        let mine = store.links.filter { $0.from == CorrelationNode(.request, scope.requestID) }
        #expect(mine.map(\.to) == [media, set, CorrelationNode(.trace, scope.traceID!), CorrelationNode(.request, "caller-7")])
        #expect(mine[0].relation == "stored by POST /v1/upload-sets/{id}/media" && mine[0].state == "201" && mine[0].durationMilliseconds != nil)
        #expect(mine[1].error == "too_large: over 1 MB" && mine.allSatisfy { $0.host == "gw-1" })

        // a request that touched nothing (a read) records nothing; outside a request a note goes nowhere
        let read = RequestCorrelation(requestID: "r-\(UUID())", callerRequestID: nil, traceID: nil)
        await Correlation.withRequest(read) {}
        read.finish(route: "GET /m/{id}", status: 200)
        Correlation.note(media, "stored")
        await recorder.flush(to: store, logger: .init(label: "test"))
        #expect(!store.links.contains { $0.from == CorrelationNode(.request, read.requestID) })
        #expect(store.links.filter { $0.to == media }.count == 1, "only the request's own link")
    }

    @Test func aTraceparentNamesItsTrace() {
        #expect(TraceParent.traceID("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01") == "0af7651916cd43dd8448eb211c80319c")
        #expect(TraceParent.traceID("garbage") == nil && TraceParent.traceID(nil) == nil)
    }
}
