import XCTest

@testable import Store

/// The ground-truth figures of `Database.criticStats` (flips, false passes and fails, juror agreement,
/// passes overturned) on hand-built logs in a real SQLite file written through `StoreWriter`.
final class StatsGroundTruthTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var writer: StoreWriter!

    override func setUp() async throws {
        directory = try TemporaryDirectory()
        writer = try StoreWriter(path: directory.databasePath, clock: ManualClock())
        writer.start()
        // The candidates' and the juries' kinds, as their migrations list them; written here so
        // these logs can be built whichever of those migrations this schema has.
        try Database(path: directory.databasePath).execute(
            """
            INSERT OR IGNORE INTO event_kinds(kind) VALUES ('candidate.started'), ('candidate.judged'), ('candidate.chosen'),
                ('jury.convened'), ('jury.voted'), ('jury.decided')
            """)
    }

    override func tearDown() async throws {
        writer.close()
        writer = nil
        directory.remove()
    }

    private struct E {
        var kind: String
        var role: String?
        var step: Int?
        var attempt: Int?
        var call: String?
        var payload: JSON
    }

    /// Writes one job of `plan` with `events` (seq numbered in order).
    private func job(_ id: String, plan: String, status: JobStatus, _ events: [E]) async throws {
        var record = Rows.job(id)
        record.planName = plan
        var ops: [WriteOp] = [.insertJob(record)]
        for (i, e) in events.enumerated() {
            ops.append(
                .append(
                    EventRecord(
                        jobID: id, seq: i + 1, at: 2000 + Int64(i), kind: e.kind, role: e.role, step: e.step, attempt: e.attempt,
                        callID: e.call, payload: e.payload)))
        }
        ops.append(.setStatus(jobID: id, status: status, reason: nil, at: 5000))
        try await writer.write(ops)
    }

    /// A job's call counter, for unique call ids.
    private var calls = 0

    private func call(_ job: String, _ role: String, agent: String? = nil, _ step: Int?, _ attempt: Int?, _ completed: JSON) -> [E] {
        calls += 1
        let id = "c\(calls)"
        return [
            E(
                kind: "call.started", role: role, step: step, attempt: attempt, call: id,
                payload: ["agent": .string(agent ?? "\(role)/\(job)")]),
            E(kind: "call.completed", role: role, step: step, attempt: attempt, call: id, payload: completed),
        ]
    }

    private func verdict(_ passed: Bool) -> JSON {
        ["reply": "{}", "verdict": ["verdict": passed ? "pass" : "fail", "score": passed ? 1 : 0, "feedback": "f"], "duration_ms": 5]
    }

    /// An attempt without candidate events: the actor's output, the critic's verdict, and (when
    /// `check` is set) the ground-truth check's call and its `step.checked`.
    private func attempt(_ job: String, _ step: Int, _ attempt: Int, critic: Bool, check: Bool?) -> [E] {
        var out = call(job, "actor", step, attempt, ["reply": "x", "duration_ms": 5])
        out += call(job, "critic", step, attempt, verdict(critic))
        if let check {
            out += call(job, "critic", agent: "critic/\(job)/check", step, attempt, verdict(check))
            out.append(
                E(
                    kind: "step.checked", step: step, attempt: attempt, call: "c\(calls)",
                    payload: ["sample": 0, "passed": .bool(check), "feedback": "checked"]))
        }
        return out
    }

    private func verifier(_ job: String, _ verified: Bool) -> [E] {
        call(job, "verifier", nil, nil, ["reply": "{}", "verified": .bool(verified), "duration_ms": 5])
    }

    private func stats() throws -> CriticStats {
        try Database(path: directory.databasePath, readOnly: true).criticStats(.init())
    }

    /// Jobs recorded before candidates: each attempt is one output, its parent the previous attempt.
    func testFlipsFalsePassesAndOverturnedPassesWithoutCandidateEvents() async throws {
        calls = 0
        try await job(
            "G1", plan: "g", status: .failed,
            // Step 1: right, rejected; the rerun is wrong (and passed): a flip and a false pass.
            attempt("G1", 0, 0, critic: false, check: true) + attempt("G1", 0, 1, critic: true, check: false)
                // Step 2: right, rejected; the rerun is right too: a false fail, no flip.
                + attempt("G1", 1, 0, critic: false, check: true) + attempt("G1", 1, 1, critic: true, check: true)
                // Step 3: wrong, rejected (no flip: it was not right); the rerun is wrong and passed.
                + attempt("G1", 2, 0, critic: false, check: false) + attempt("G1", 2, 1, critic: true, check: false)
                + verifier("G1", false))
        calls = 0
        // No check: counts only for the passes the verifier overturned (here it did not).
        try await job("G2", plan: "g", status: .succeeded, attempt("G2", 0, 0, critic: true, check: nil) + verifier("G2", true))
        calls = 0
        // Went on with an unpassed step (policy.on_exhausted: best): the critic did not pass every step.
        try await job(
            "G3", plan: "g", status: .failed,
            attempt("G3", 0, 0, critic: false, check: nil)
                + [E(kind: "step.exhausted", step: 0, payload: ["attempts": 1, "last_feedback": "f", "best_attempt": 0, "best_score": 0])]
                + verifier("G3", false))
        calls = 0
        // Never passed by the critic: the check's pass on attempt 2 is not a critic's pass (no
        // correction); a right output rejected with no rerun is a false fail and no flip.
        try await job(
            "G4", plan: "g", status: .failed,
            attempt("G4", 0, 0, critic: false, check: false) + attempt("G4", 0, 1, critic: false, check: true)
                + [E(kind: "step.exhausted", step: 0, payload: ["attempts": 2, "last_feedback": "f"])])

        let s = try stats()
        XCTAssertEqual(s.judges.map(\.label), ["critic"])
        let critic = s.judges[0]
        XCTAssertEqual(critic.judged, 8)
        XCTAssertEqual(critic.falsePasses, 2)
        XCTAssertEqual(critic.falseFails, 3)
        XCTAssertEqual(critic.flips, 1)
        XCTAssertEqual(critic.flipRate ?? -1, 1.0 / 3, accuracy: 1e-9)
        XCTAssertEqual(critic.checkAgreement ?? -1, 3.0 / 8, accuracy: 1e-9)
        XCTAssertEqual(critic.passedJobs, 2)
        XCTAssertEqual(critic.passesOverturned, 1)
        XCTAssertEqual(critic.overturnedRate ?? -1, 0.5, accuracy: 1e-9)
        XCTAssertTrue(s.agreements.isEmpty)

        // The check's calls are not the critic's verdicts: the steps of G1 were corrected, G4's not.
        let g = try XCTUnwrap(s.plans.first)
        XCTAssertEqual(g.steps, 6)
        XCTAssertEqual(g.attempts, 10)
        XCTAssertEqual(g.stepsWithFailedAttempt, 5)
        XCTAssertEqual(g.correctedSteps, 3)
        let roles = s.roles.map { "\($0.role) \($0.calls)" }
        XCTAssertEqual(roles, ["actor 10", "critic 10", "check 8", "verifier 3"])

        // The wire form carries them, and reads back the same.
        let judges = try XCTUnwrap(s.json["plans"]?.arrayValue?.first?["judges"]?.arrayValue)
        XCTAssertEqual(judges.first?["flips"], 1)
        XCTAssertEqual(judges.first?["flip_rate"], 0.3333)
        XCTAssertEqual(judges.first?["false_passes"], 2)
        XCTAssertEqual(judges.first?["passes_overturned"], 1)
        XCTAssertEqual(CriticStats(json: s.json)?.judges, s.judges)
    }

    /// A format-4 job judged by a jury of three: the candidates' and the jury's events as the record
    /// shapes say (jury events carry no sample: they belong to the candidate judged next).
    func testJuryFlipsAndJurorAgreementWithCandidateEvents() async throws {
        calls = 0
        var events: [E] = []
        func candidate(_ attempt: Int, _ sample: Int, parent: (Int, Int)?) {
            var payload: [(String, JSON)] = [("sample", .int(sample)), ("temperature", 0.2)]
            if let parent { payload.append(("parent", ["attempt": .int(parent.0), "sample": .int(parent.1)])) }
            events.append(E(kind: "candidate.started", step: 0, attempt: attempt, payload: .object(payload)))
        }
        /// The jury's votes (nil: an error), its decision, the judged candidate and its check.
        func judged(_ attempt: Int, _ sample: Int, votes: [Bool?], check: Bool) {
            let jurors = ["a", "b", "c"]
            events.append(
                E(
                    kind: "jury.convened", role: "critic", step: 0, attempt: attempt,
                    payload: ["rule": "majority", "jurors": ["a", "b", "c"], "order": [2, 0, 1], "seed": 7]))
            var ids: [String] = []
            for (i, _) in votes.enumerated() {
                events += call("J1", "critic", agent: "critic/J1/\(jurors[i])", 0, attempt, verdict(votes[i] ?? false))
                ids.append("c\(calls)")
            }
            for (i, vote) in votes.enumerated() {
                events.append(
                    E(
                        kind: "jury.voted", role: "critic", step: 0, attempt: attempt, call: ids[i],
                        payload: [
                            "juror": .string(jurors[i]), "index": .int(i), "outcome": vote.map { $0 ? "pass" : "fail" } ?? "error",
                            "feedback": "", "error": vote == nil ? "timeout" : .null,
                        ]))
            }
            let passes = votes.filter { $0 == true }.count
            let fails = votes.filter { $0 == false }.count
            let passed = passes > fails
            events.append(
                E(
                    kind: "jury.decided", role: "critic", step: 0, attempt: attempt,
                    payload: [
                        "rule": "majority", "passes": .int(passes), "fails": .int(fails), "errors": .int(votes.count - passes - fails),
                        "outcome": passed ? "pass" : "fail", "score": passed ? 1 : 0, "feedback": "",
                    ]))
            events.append(
                E(
                    kind: "candidate.judged", step: 0, attempt: attempt, call: ids.last,
                    payload: ["sample": .int(sample), "outcome": passed ? "pass" : "fail", "feedback": ""]))
            events += call("J1", "critic", agent: "critic/J1/check", 0, attempt, verdict(check))
            events.append(
                E(
                    kind: "step.checked", step: 0, attempt: attempt, call: "c\(calls)",
                    payload: ["sample": .int(sample), "passed": .bool(check), "feedback": ""]))
        }
        candidate(0, 0, parent: nil)
        candidate(0, 1, parent: nil)
        judged(0, 0, votes: [true, false, true], check: false)  // the jury passes a wrong output
        judged(0, 1, votes: [false, false, true], check: true)  // and rejects a right one ...
        candidate(1, 0, parent: (0, 1))
        judged(1, 0, votes: [true, true, nil], check: false)  // ... whose rerun is wrong: a flip
        events.append(E(kind: "candidate.chosen", step: 0, attempt: 1, payload: ["sample": 0, "reason": "passed"]))
        events += verifier("J1", true)
        try await job("J1", plan: "j", status: .succeeded, events)

        let s = try stats()
        XCTAssertEqual(s.judges.map(\.label), ["jury", "juror a", "juror b", "juror c"])
        func row(_ label: String) throws -> CriticStats.JudgeRow { try XCTUnwrap(s.judges.first { $0.label == label }) }
        let jury = try row("jury")
        XCTAssertEqual(
            [jury.judged, jury.falsePasses, jury.falseFails, jury.flips, jury.passedJobs, jury.passesOverturned], [3, 2, 1, 1, 1, 0])
        XCTAssertEqual(jury.flipRate, 1)
        let a = try row("juror a")
        XCTAssertEqual([a.judged, a.falsePasses, a.falseFails, a.flips], [3, 2, 1, 1])
        let b = try row("juror b")
        XCTAssertEqual([b.judged, b.falsePasses, b.falseFails, b.flips], [3, 1, 1, 1])
        XCTAssertEqual(b.checkAgreement ?? -1, 1.0 / 3, accuracy: 1e-9)
        let c = try row("juror c")  // its error is no vote
        XCTAssertEqual([c.judged, c.falsePasses, c.falseFails, c.flips], [2, 1, 0, 0])

        XCTAssertEqual(
            s.agreements.map { "\($0.jurors.joined(separator: "+")) \($0.agreed)/\($0.outputs)" }, ["a+b 2/3", "a+c 1/2", "b+c 0/2"])
        // Jurors' and the check's calls are not the critic's: the plan's critic judged nothing.
        XCTAssertNil(s.judges.first { $0.judge == "critic" })
        let wire = try XCTUnwrap(s.json["plans"]?.arrayValue?.first?["juror_agreement"]?.arrayValue)
        XCTAssertEqual(wire.first?["jurors"], ["a", "b"])
        XCTAssertEqual(CriticStats(json: s.json)?.agreements, s.agreements)
    }
}
