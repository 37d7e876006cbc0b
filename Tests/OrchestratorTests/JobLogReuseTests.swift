import Store
import XCTest

@testable import Orchestrator

/// What a retry counts as the same event again (`JobLog.reuses`): a changed request or decision
/// never is, what names the job or the clock is not compared.
final class JobLogReuseTests: XCTestCase {
    private func source(_ event: some RecordedEvent, callID: String? = "c1", seq: Int = 3) -> EventRecord {
        EventRecord(jobID: "OLD", seq: seq, at: 0, kind: type(of: event).kind.rawValue, callID: callID, payload: event.json)
    }

    func testACallIsReusedOnlyWithTheSameRequest() {
        let request: JSON = ["model": "m", "messages": [["role": "user", "content": "Goal: g"]]]
        let original = source(CallStarted(agent: "actor/OLD", reask: 0, request: request))
        XCTAssertTrue(JobLog.reuses(EventDraft(CallStarted(agent: "actor/NEW", reask: 0, request: request), callID: "c1"), original))
        let changed: JSON = ["model": "m", "messages": [["role": "user", "content": "Goal: another"]]]
        XCTAssertFalse(JobLog.reuses(EventDraft(CallStarted(agent: "actor/NEW", reask: 0, request: changed), callID: "c1"), original))
        XCTAssertFalse(JobLog.reuses(EventDraft(CallStarted(agent: "actor/NEW", reask: 0, request: request), callID: "c2"), original))
        // An answer the bus takes from the record.
        XCTAssertTrue(JobLog.reuses(.recorded(.callCompleted, callID: "c1"), source(CallCompleted(reply: "r", durationMs: 1))))
        XCTAssertFalse(JobLog.reuses(.recorded(.callFailed, callID: "c1"), source(CallCompleted(reply: "r", durationMs: 1))))
    }

    func testAToolIsReusedOnlyWithTheSameArguments() {
        let original = source(ToolStarted(tool: "run_command", toolCallID: "t", idempotencyKey: "OLD/c1/0", argv: ["ls"]), callID: "c1.0")
        let same = ToolStarted(tool: "run_command", toolCallID: "t", idempotencyKey: "NEW/c1/0", argv: ["ls"])
        XCTAssertTrue(JobLog.reuses(EventDraft(same, callID: "c1.0"), original))
        let other = ToolStarted(tool: "run_command", toolCallID: "t", idempotencyKey: "NEW/c1/0", argv: ["rm", "-rf", "x"])
        XCTAssertFalse(JobLog.reuses(EventDraft(other, callID: "c1.0"), original))
    }

    func testAGateDecisionIsReusedOnlyWhenItIsTheSame() {
        let decided = GateDecided(gate: "c1.0", decision: .approved, by: .critic, requestSHA256: "ab", call: "c2", waitedMs: 5)
        let original = source(decided, callID: "c1.0")
        var later = decided
        later.waitedMs = 9
        XCTAssertTrue(JobLog.reuses(EventDraft(later, callID: "c1.0"), original))
        var rejected = decided
        rejected.decision = .rejected
        XCTAssertFalse(JobLog.reuses(EventDraft(rejected, callID: "c1.0"), original))
        var otherRequest = decided
        otherRequest.requestSHA256 = "cd"
        XCTAssertFalse(JobLog.reuses(EventDraft(otherRequest, callID: "c1.0"), original))
    }

    func testOtherEventsAreReusedWithTheSamePayloadMarkedOrNot() {
        let replanned = JobReplanned(replan: 1, fromStep: 1, steps: ["a"])
        let marked = EventRecord(
            jobID: "OLD", seq: 4, at: 0, kind: JobReplanned.kind.rawValue, payload: RetryPrefix.marking(replanned.json, from: 2))
        XCTAssertTrue(JobLog.reuses(EventDraft(replanned), marked))
        XCTAssertFalse(JobLog.reuses(EventDraft(JobReplanned(replan: 1, fromStep: 1, steps: ["b"])), marked))
    }
}
