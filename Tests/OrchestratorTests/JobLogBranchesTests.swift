import Store
import TestSupport
import XCTest

@testable import Orchestrator
@testable import Runtime

/// How a recovered log matches what concurrent branches emit (`JobLog.enterBranches`): calls by
/// call id in whatever order they come, a branch past its record written live, everything else in
/// order — against a real store.
final class JobLogBranchesTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var writer: StoreWriter!
    private var loop: EventLoop!

    override func setUp() async throws {
        directory = try TemporaryDirectory()
        writer = try StoreWriter(path: directory.databasePath, clock: SystemClock())
        writer.start()
        loop = startedLoop()
        let job = JobRecord(
            id: "J", planName: "plan", plan: #"{"name":"plan"}"#, goal: "g", inputs: [:], cwd: "/tmp", idempotencyKey: nil,
            status: .running, createdAt: 1000)
        try await writer.write([.insertJob(job)] + recorded.map(WriteOp.append))
    }

    override func tearDown() {
        loop.finish()
        directory.remove()
    }

    private func event(_ seq: Int, _ kind: EventKind, _ callID: String?) -> EventRecord {
        EventRecord(jobID: "J", seq: seq, at: 2000, kind: kind.rawValue, callID: callID, payload: ["n": .int(seq)])
    }

    /// Two jurors asked at once, the second answering first; a third was asked just before the crash.
    private var recorded: [EventRecord] {
        [
            event(1, .jobState, nil),
            event(2, .callStarted, "c1-1-1"), event(3, .callStarted, "c1-2-1"), event(4, .callStarted, "c1-3-1"),
            event(5, .callCompleted, "c1-2-1"), event(6, .callCompleted, "c1-1-1"),
        ]
    }

    private func makeLog() -> JobLog {
        JobLog(jobID: "J", lastSeq: 6, recorded: recorded, writer: writer, clock: SystemClock(), publish: { _ in })
    }

    private static func draft(_ kind: EventKind, _ callID: String?) -> EventDraft {
        var draft = EventDraft(JobResumed(replayingEvents: 0), callID: callID)
        draft.kind = kind.rawValue
        return draft
    }

    func testBranchesMatchTheirCallsInAnyOrderAndGoLivePastTheirRecord() async throws {
        let log = makeLog()
        let (seqs, live) = try await loop.run { () -> ([Int], Int) in
            var seqs: [Int] = []
            seqs.append(try await log.emit(Self.draft(.jobState, nil)).event.seq)
            log.enterBranches()
            // The branches run in another order than the one recorded.
            seqs.append(try await log.emit(Self.draft(.callStarted, "c1-3-1")).event.seq)
            seqs.append(try await log.emit(Self.draft(.callStarted, "c1-1-1")).event.seq)
            XCTAssertEqual(log.recordedAnswer(to: "c1-1-1", kinds: [.callCompleted, .callFailed])?.seq, 6)
            XCTAssertNil(log.recordedAnswer(to: "c1-3-1", kinds: [.callCompleted, .callFailed]), "its reply never came")
            seqs.append(try await log.emit(.recorded(.callCompleted, callID: "c1-1-1")).event.seq)
            seqs.append(try await log.emit(Self.draft(.callStarted, "c1-2-1")).event.seq)
            seqs.append(try await log.emit(.recorded(.callCompleted, callID: "c1-2-1")).event.seq)
            XCTAssertFalse(log.isReplaying, "every recorded event was matched")
            // The third juror is past its record: its reply is written after the recorded events.
            let (reply, replayed) = try await log.emit(Self.draft(.callCompleted, "c1-3-1"))
            XCTAssertFalse(replayed)
            log.leaveBranches()
            return (seqs, reply.seq)
        }
        XCTAssertEqual(seqs, [1, 4, 2, 6, 3, 5])
        XCTAssertEqual(live, 7)
        let stored = try StoreReader(path: directory.databasePath).readNow { try $0.events(jobID: "J") }.map(\.seq)
        XCTAssertEqual(stored, Array(1...7))
    }

    func testWithoutBranchesTheRecordIsMatchedInOrder() async throws {
        let log = makeLog()
        let outcome = try await loop.run { () -> String in
            _ = try await log.emit(Self.draft(.jobState, nil))
            do {
                _ = try await log.emit(Self.draft(.callStarted, "c1-2-1"))
                return "matched out of order"
            } catch let divergence as ReplayDivergence {
                return divergence.description
            }
        }
        XCTAssertTrue(outcome.contains("call.started c1-2-1"), outcome)
        XCTAssertTrue(outcome.contains("the log has call.started c1-1-1"), outcome)
    }

    func testInBranchesAnEventWithoutACallIDIsStillMatchedInOrder() async throws {
        let log = makeLog()
        let outcome = try await loop.run { () -> String in
            log.enterBranches()
            defer { log.leaveBranches() }
            do {
                _ = try await log.emit(Self.draft(.stepExhausted, nil))
                return "matched"
            } catch let divergence as ReplayDivergence {
                return divergence.description
            }
        }
        XCTAssertTrue(outcome.contains("the log has job.state"), outcome)
    }
}
