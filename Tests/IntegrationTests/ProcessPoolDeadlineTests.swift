import Foundation
import Logging
import MediaCore
import ProcessorPool
import Testing

/// The pool's own deadline, behind the processor's: a processor that never answers (hung in a library
/// call, or its answer lost) is killed when the job's timeout has passed, and the job times out instead of
/// holding its worker for ever.
struct ProcessPoolDeadlineTests {
    @Test(.timeLimit(.minutes(1))) func aProcessorThatNeverAnswersIsKilledAtTheDeadlineAndTheNextJobGetsAFreshOne() async throws {
        // `sleep` reads no job and writes no answer: a processor that hangs
        let pool = ProcessPool(
            executable: "/usr/bin/sleep",
            arguments: ["600"],
            environment: [:],
            size: 1,
            timeout: .milliseconds(100),
            logger: Logger(label: "test")
        )
        let job = ProcessingJob(
            jobID: 1,
            mediaID: .generate(),
            kind: .photo,
            original: ObjectLocation(pool: "media.photo", key: "k"),
            size: 1,
            mime: "image/jpeg",
            attempts: 1
        )
        // twice: the second job is not left waiting for the first one's process
        for attempt in 1...2 {
            do {
                _ = try await pool.process(job)
                Issue.record("a processor that never answers answered")
            } catch let error as ProcessingError {
                #expect(error.code == .timedOut && !error.permanent, "attempt \(attempt): \(error)")
            }
        }
        await pool.shutdown()
    }
}
