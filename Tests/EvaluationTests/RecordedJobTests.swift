import Orchestrator
import Store
import XCTest

@testable import Evaluation

/// `RecordedJob` reads the critic's verdicts from a job's events, and only the critic's (a jury's decision).
final class RecordedJobTests: XCTestCase {
    private func event(_ kind: String, _ role: String?, step: Int, attempt: Int, call: String, _ payload: JSON) -> JSON {
        [
            "kind": .string(kind), "role": role.map(JSON.string) ?? .null, "step": .int(step), "attempt": .int(attempt),
            "call": .string(call),
            "payload": payload,
        ]
    }

    private func call(_ role: String, agent: String, step: Int, attempt: Int, call: String, _ completed: JSON) -> [JSON] {
        [
            event("call.started", role, step: step, attempt: attempt, call: call, ["agent": .string(agent), "reask": 0, "request": [:]]),
            event("call.completed", role, step: step, attempt: attempt, call: call, completed),
        ]
    }

    /// The ground-truth check is a critic-role call, but its verdict is not the critic's.
    func testTheCheckIsNotTheCritic() {
        let job = WireJob(
            JobRecord(
                id: "J", planName: "p", plan: #"{"name":"p"}"#, goal: "g", inputs: [:], cwd: nil, idempotencyKey: nil, status: .failed,
                createdAt: 1000))
        var events: [JSON] = [["kind": "job.state", "role": .null, "payload": ["from": "queued", "to": "running", "steps": ["s"]]]]
        events += call("actor", agent: "actor/J", step: 0, attempt: 0, call: "c1", ["reply": "{\"output\": \"x\"}", "duration_ms": 1])
        events += call(
            "critic", agent: "critic/J", step: 0, attempt: 0, call: "c2",
            ["reply": "{}", "verdict": ["verdict": "fail", "score": 0, "feedback": "no"], "duration_ms": 1])
        events += call(
            "critic", agent: "critic/J/check", step: 0, attempt: 0, call: "c3",
            ["reply": "{}", "verdict": ["verdict": "pass", "score": 1, "feedback": "right"], "duration_ms": 1])
        let recorded = RecordedJob(details: JobDetails(job: job, usage: [:]), events: events)
        XCTAssertEqual(recorded.attempts.map(\.criticPassed), [false])
        XCTAssertEqual(recorded.attempts.map(\.output), ["x"])
    }

    /// With a jury, the critic's verdict is its decision, not that of whichever juror answered last.
    func testAJurysDecisionIsTheCriticsVerdict() {
        let record = JobRecord(
            id: "J1", planName: "p", plan: "{}", goal: "g", inputs: [:], cwd: nil, idempotencyKey: nil, status: .failed, createdAt: 1)
        var events: [JSON] = []
        func add(_ kind: EventKind, role: String?, call: String? = nil, _ payload: JSON) {
            let event = EventRecord(
                jobID: "J1", seq: events.count + 1, at: 1, kind: kind.rawValue, role: role, step: 0, attempt: 0, callID: call,
                payload: payload)
            events.append(event.json)
        }
        add(.callStarted, role: "actor", call: "c1", CallStarted(agent: "actor/J1", reask: 0, request: [:]).json)
        add(.callCompleted, role: "actor", call: "c1", CallCompleted(reply: #"{"output":"x"}"#, durationMs: 1).json)
        add(.juryConvened, role: "critic", JuryConvened(rule: "unanimous", jurors: ["a", "b"], order: [0, 1], seed: 1).json)
        let verdicts: [(String, String)] = [("c2-1-1", "fail"), ("c2-2-1", "pass")]
        for (call, verdict) in verdicts {
            add(.callStarted, role: "critic", call: call, CallStarted(agent: "critic/J1/x", reask: 0, request: [:]).json)
            let v: JSON = ["verdict": .string(verdict), "score": 0.6, "feedback": "f"]
            add(.callCompleted, role: "critic", call: call, CallCompleted(reply: v.encoded, durationMs: 1, outcome: .verdict(v)).json)
        }
        add(
            .juryDecided, role: "critic",
            JuryDecided(rule: "unanimous", passes: 1, fails: 1, errors: 0, outcome: .fail, score: 0.6, feedback: "f").json)
        let job = RecordedJob(details: JobDetails(job: WireJob(record), usage: [:]), events: events)
        XCTAssertEqual(job.attempts.map(\.criticPassed), [false], "the last juror passed, the jury failed it")
    }

    /// Best of three (format 4): each candidate is its own attempt with its own verdict, the step's
    /// output is the chosen candidate's (here the best-scored, which no critic passed), and a rerun's
    /// candidates name the one they revise.
    func testCandidatesAreAttemptsAndTheChosenOneIsTheStepsOutput() {
        let record = JobRecord(
            id: "J2", planName: "p", plan: "{}", goal: "g", inputs: [:], cwd: nil, idempotencyKey: nil, status: .succeeded, createdAt: 1)
        var events: [JSON] = []
        func add(_ kind: EventKind, role: String?, attempt: Int, call: String? = nil, _ payload: JSON) {
            let event = EventRecord(
                jobID: "J2", seq: events.count + 1, at: 1, kind: kind.rawValue, role: role, step: 0, attempt: attempt, callID: call,
                payload: payload)
            events.append(event.json)
        }
        add(.jobState, role: nil, attempt: 0, JobState(from: .queued, to: .running, steps: ["s"]).json)
        for sample in 0..<3 {
            add(.candidateStarted, role: "actor", attempt: 0, CandidateStarted(sample: sample, parent: nil, temperature: 0.5).json)
            let call = "c1-\(sample + 1)-1"
            add(
                .callStarted, role: "actor", attempt: 0, call: call,
                CallStarted(agent: "actor/J2", reask: 0, request: ["sample": .int(sample)]).json)
            add(
                .callCompleted, role: "actor", attempt: 0, call: call,
                CallCompleted(reply: #"{"output":"out\#(sample)"}"#, durationMs: 1).json)
        }
        for (sample, score) in [(0, 0.2), (1, 0.4), (2, 0.1)] {
            add(
                .candidateJudged, role: "critic", attempt: 0,
                CandidateJudged(sample: sample, outcome: .fail, score: score, feedback: "f").json)
        }
        // The rerun revises candidate 1, the best of the first attempt.
        add(
            .candidateStarted, role: "actor", attempt: 1,
            CandidateStarted(sample: 0, parent: CandidateRef(attempt: 0, sample: 1), temperature: 0.7).json)
        add(.callStarted, role: "actor", attempt: 1, call: "c2", CallStarted(agent: "actor/J2", reask: 0, request: [:]).json)
        add(.callCompleted, role: "actor", attempt: 1, call: "c2", CallCompleted(reply: #"{"output":"again"}"#, durationMs: 1).json)
        add(.candidateJudged, role: "critic", attempt: 1, CandidateJudged(sample: 0, outcome: .fail, score: 0.3, feedback: "f").json)
        add(.candidateChosen, role: nil, attempt: 0, CandidateChosen(sample: 1, score: 0.4, reason: .best).json)
        let job = RecordedJob(details: JobDetails(job: WireJob(record), usage: [:]), events: events)
        XCTAssertEqual(job.attempts.map { "\($0.attempt)/\($0.sample)" }, ["0/0", "0/1", "0/2", "1/0"])
        XCTAssertEqual(job.attempts.map(\.output), ["out0", "out1", "out2", "again"])
        XCTAssertEqual(job.attempts.map(\.criticPassed), [false, false, false, false])
        XCTAssertEqual(job.attempts.map(\.sampled), [true, true, true, false])
        XCTAssertEqual(job.attempts.map(\.parent), [nil, nil, nil, 1])
        XCTAssertEqual(job.finalOutputs.map(\.output), ["out1"], "the chosen candidate, though no critic passed it")

        // A flip is a right candidate the critic rejected whose revision is wrong: candidate 1 here,
        // not candidate 0, also right and rejected, which no rerun revised.
        let result = EvalResult(
            key: "k", arm: "a", task: "t", rep: 0, jobID: "J2", status: "succeeded", verified: true, firstAttempt: false, actorCalls: 4,
            calls: 4, inputTokens: 0, outputTokens: 0, costUSD: nil,
            attempts: job.attempts.map {
                EvalResult.Attempt(
                    replan: 0, step: 0, attempt: $0.attempt, sample: $0.sample, parent: $0.parent,
                    correct: $0.output != "out2" && $0.output != "again",
                    criticPassed: $0.criticPassed)
            }, note: "")
        XCTAssertEqual(result.flips, 1)
        XCTAssertEqual(try EvalResult(json: result.json), result, "sample and parent survive the state file")
    }
}
