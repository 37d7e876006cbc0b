import XCTest

@testable import Store

/// Every kind's typed payload: one stored form (the exact bytes, which the chain covers), decoded back
/// to the same value, and a wrong shape refused by name.
final class RecordedEventsTests: XCTestCase {
    /// One value of every kind, with the bytes it is stored as.
    private let samples: [(any RecordedEvent, String)] = [
        (JobSubmitted(plan: "p", goal: "g", inputs: [:]), #"{"plan":"p","goal":"g","inputs":{}}"#),
        (JobState(from: .queued, to: .running, steps: ["a"]), #"{"from":"queued","to":"running","steps":["a"]}"#),
        (JobState(from: .running, to: .succeeded), #"{"from":"running","to":"succeeded","reason":null}"#),
        (
            JobState(from: .queued, to: .cancelled, reason: "cancelled by request"),
            #"{"from":"queued","to":"cancelled","reason":"cancelled by request"}"#
        ),
        (JobReplanned(replan: 1, fromStep: 2, steps: ["x", "y"]), #"{"replan":1,"from_step":2,"steps":["x","y"]}"#),
        (JobResumed(replayingEvents: 7), #"{"replaying_events":7}"#),
        (
            JobSubmitted(plan: "p", goal: "g", inputs: [:], retryOf: "J0", fromStep: 2),
            #"{"plan":"p","goal":"g","inputs":{},"retry_of":"J0","from_step":2}"#
        ),
        (JobRetried(job: "J2", fromStep: 2), #"{"job":"J2","from_step":2}"#),
        (JobRetried(job: "J3", fromStep: 1, goal: "g2"), #"{"job":"J3","from_step":1,"goal":"g2"}"#),
        (CallStarted(agent: "actor/J", reask: 0, request: ["model": "m"]), #"{"agent":"actor/J","reask":0,"request":{"model":"m"}}"#),
        (CallCompleted(reply: "r", durationMs: 1.5), #"{"reply":"r","duration_ms":1.5}"#),
        (CallFailed(error: "timeout", message: "m", durationMs: 2), #"{"error":"timeout","message":"m","duration_ms":2}"#),
        (CallRestarted(), #"{"reason":"the daemon stopped before this call completed; it is made again"}"#),
        (StepExhausted(attempts: 3, lastFeedback: "f"), #"{"attempts":3,"last_feedback":"f"}"#),
        (
            StepExhausted(attempts: 3, lastFeedback: "f", bestAttempt: 1, bestScore: 0.4),
            #"{"attempts":3,"last_feedback":"f","best_attempt":1,"best_score":0.4}"#
        ),
        (StepTimedOut(timeoutSeconds: 1.5, reason: "late"), #"{"timeout_s":1.5,"reason":"late"}"#),
        (
            StepInfeasible(attempts: 1, feasibility: 0.1, replanBelow: 0.3, feedback: "f"),
            #"{"attempts":1,"feasibility":0.1,"replan_below":0.3,"feedback":"f"}"#
        ),
        (
            GateRequested(gate: "c1.0", rule: 0, review: "human", tool: "run_command", arguments: #"{"argv":["rm"]}"#, requestSHA256: "ab"),
            #"{"gate":"c1.0","rule":0,"review":"human","tool":"run_command","arguments":"{\"argv\":[\"rm\"]}","request_sha256":"ab"}"#
        ),
        (
            GateDecided(
                gate: "c1.0", decision: .approved, by: .person, requestSHA256: "ab", uid: 1000, user: "ann", note: "ok",
                editedArguments: "{}", waitedMs: 5),
            #"{"gate":"c1.0","decision":"approved","by":"person","request_sha256":"ab","uid":1000,"user":"ann","note":"ok","edited_arguments":"{}","waited_ms":5}"#
        ),
        (
            GateRefused(gate: "c1.0", uid: 1001, user: nil, reason: "no"),
            #"{"gate":"c1.0","uid":1001,"reason":"no"}"#
        ),
        (AttemptDuplicate(sameAsAttempt: 0, feedback: "f"), #"{"same_as_attempt":0,"feedback":"f"}"#),
        (CandidateStarted(sample: 0, parent: nil, temperature: 0.2), #"{"sample":0,"temperature":0.2}"#),
        (
            CandidateStarted(sample: 2, parent: CandidateRef(attempt: 0, sample: 1), temperature: 0.5, workspace: "/w/.x/r0-s0-a1-k2"),
            #"{"sample":2,"parent":{"attempt":0,"sample":1},"temperature":0.5,"workspace":"/w/.x/r0-s0-a1-k2"}"#
        ),
        (
            CandidateJudged(sample: 1, outcome: .pass, score: 0.9, feedback: "ok"),
            #"{"sample":1,"outcome":"pass","score":0.9,"feedback":"ok"}"#
        ),
        (CandidateJudged(sample: 0, outcome: .unusable, score: nil, feedback: "no"), #"{"sample":0,"outcome":"unusable","feedback":"no"}"#),
        (
            CandidateChosen(sample: 1, score: 0.9, reason: .best, workspace: "/w/.x/r0-s0-a1-k1"),
            #"{"sample":1,"score":0.9,"reason":"best","workspace":"/w/.x/r0-s0-a1-k1"}"#
        ),
        (
            ToolStarted(tool: "run_command", toolCallID: "t1", idempotencyKey: "J/c1/0", argv: ["ls"]),
            #"{"tool":"run_command","tool_call_id":"t1","idempotency_key":"J/c1/0","argv":["ls"]}"#
        ),
        (
            ToolStarted(tool: "write_file", toolCallID: "t2", idempotencyKey: "J/c1/1", path: "a.txt", bytes: 3),
            #"{"tool":"write_file","tool_call_id":"t2","idempotency_key":"J/c1/1","path":"a.txt","bytes":3}"#
        ),
        (
            ToolStarted(tool: "nope", toolCallID: "t3", idempotencyKey: "J/c1/2", arguments: "{", invalid: "bad"),
            #"{"tool":"nope","tool_call_id":"t3","idempotency_key":"J/c1/2","arguments":"{","invalid":"bad"}"#
        ),
        (
            ToolCompleted(tool: "run_command", toolCallID: "t1", ok: false, result: ["exit_status": 2], durationMs: 4),
            #"{"tool":"run_command","tool_call_id":"t1","ok":false,"result":{"exit_status":2},"duration_ms":4}"#
        ),
        (
            StepChecked(sample: 0, passed: false, feedback: "2 tests failed"),
            #"{"sample":0,"passed":false,"feedback":"2 tests failed"}"#
        ),
        (
            ToolRestarted(idempotencyKey: "J/c1/0"),
            #"{"reason":"the daemon stopped before this tool completed; it runs again","idempotency_key":"J/c1/0"}"#
        ),
        (
            JuryConvened(rule: "mean_score >= 0.7", jurors: ["a", "b"], order: [1, 0], seed: 4_503_599_627_370_495),
            #"{"rule":"mean_score >= 0.7","jurors":["a","b"],"order":[1,0],"seed":4503599627370495}"#
        ),
        (
            JuryVoted(juror: "a", index: 0, outcome: .pass, score: 0.9, feedback: "fine"),
            #"{"juror":"a","index":0,"outcome":"pass","score":0.9,"feedback":"fine"}"#
        ),
        (
            JuryVoted(juror: "b", index: 1, outcome: .error, score: nil, feedback: "", error: "timed out"),
            #"{"juror":"b","index":1,"outcome":"error","feedback":"","error":"timed out"}"#
        ),
        (
            JuryDecided(rule: "majority", passes: 1, fails: 0, errors: 1, outcome: .fail, score: 0.45, feedback: "majority: 1 pass"),
            #"{"rule":"majority","passes":1,"fails":0,"errors":1,"outcome":"fail","score":0.45,"feedback":"majority: 1 pass"}"#
        ),
    ]

    func testEveryKindHasOneStoredFormThatDecodesToTheSameValue() throws {
        XCTAssertEqual(Set(samples.map { type(of: $0.0).kind }), Set(EventKind.allCases), "a sample of every kind")
        for (event, stored) in samples {
            XCTAssertEqual(event.json.encoded, stored)
            let kind = type(of: event).kind
            XCTAssertTrue(kind.recordedType == type(of: event), "\(kind) maps to its type")
            let record = EventRecord(jobID: "J", seq: 1, at: 0, kind: kind.rawValue, payload: try JSON.parse(stored))
            let decoded = try kind.recordedType.init(payload: record.payload)
            XCTAssertTrue(try Self.decodesToItself(event, record), "\(kind)")
            XCTAssertEqual(decoded.json.encoded, stored, "\(kind) decodes to the value it was written from")
        }
    }

    private static func decodesToItself<E: RecordedEvent>(_ event: E, _ record: EventRecord) throws -> Bool {
        try record.decode(E.self) == event
    }

    func testAWrongShapeOrKindIsRefusedByName() {
        func refusal(_ kind: EventKind, _ payload: JSON) -> String {
            do {
                try kind.check(payload)
                return "accepted"
            } catch {
                return error.description
            }
        }
        XCTAssertEqual(
            refusal(.jobState, ["from": "queued", "to": "finished"]), "a job.state event's payload member to is a string, not a job status")
        XCTAssertEqual(refusal(.jobReplanned, ["replan": 1, "from_step": 0]), "a job.replanned event's payload member steps is missing")
        XCTAssertEqual(
            refusal(.toolCompleted, ["tool": "t", "tool_call_id": "i", "ok": "yes", "result": 1, "duration_ms": 1]),
            "a tool.completed event's payload member ok is a string, not a boolean")
        XCTAssertEqual(
            refusal(.toolStarted, ["tool": "t", "tool_call_id": "i", "argv": ["ls", 1]]),
            "a tool.started event's payload member argv is an array, not an array of strings")
        XCTAssertEqual(refusal(.jobResumed, .null), "a job.resumed event's payload is null, not an object")
        XCTAssertEqual(
            refusal(.juryVoted, ["juror": "a", "index": 0, "outcome": "abstain", "feedback": ""]),
            "a jury.voted event's payload member outcome is a string, not pass, fail or error")
        XCTAssertEqual(
            refusal(.juryConvened, ["rule": "majority", "jurors": ["a"], "order": [0.5], "seed": 1]),
            "a jury.convened event's payload member order is an array, not an array of integers")
        XCTAssertEqual(refusal(.stepTimedOut, ["timeout_s": 1, "reason": "late"]), "accepted")
        let record = EventRecord(jobID: "J", seq: 1, at: 0, kind: "job.state", payload: ["from": "queued", "to": "running"])
        XCTAssertThrowsError(try record.decode(ToolStarted.self)) { error in
            XCTAssertEqual("\(error)", "a job.state event was read as a tool.started event")
        }
        XCTAssertNil(record.payload(as: JobResumed.self))
        XCTAssertEqual(record.payload(as: JobState.self), JobState(from: .queued, to: .running))
    }

    func testAToolResultRecordedAsTextIsReadAsTheObjectItEncodes() {
        let completed = ToolCompleted(
            tool: "run_command", toolCallID: "t", ok: true, result: .string(#"{"exit_status":0,"stdout":"hi"}"#), durationMs: 1)
        XCTAssertEqual(completed.outcome.exitStatus, 0)
        XCTAssertEqual(completed.outcome.stdout, "hi")
        XCTAssertNil(completed.outcome.error)
    }
}
