import XCTest

@testable import Store

/// `Database.criticStats` on a real SQLite file written through `StoreWriter`.
final class StatsTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var writer: StoreWriter!

    override func setUp() async throws {
        directory = try TemporaryDirectory()
        writer = try StoreWriter(path: directory.databasePath, clock: ManualClock())
        writer.start()
    }

    override func tearDown() async throws {
        writer.close()
        writer = nil
        directory.remove()
    }

    /// Writes one job with the given events (seq numbered in order) and final status.
    private func job(
        _ id: String, plan: String, createdAt: Int64 = 1000, status: JobStatus, reason: String? = nil,
        _ events: [(kind: String, role: String?, step: Int?, attempt: Int?, payload: JSON)]
    ) async throws {
        var record = Rows.job(id, createdAt: createdAt)
        record.planName = plan
        var ops: [WriteOp] = [.insertJob(record)]
        for (i, e) in events.enumerated() {
            ops.append(
                .append(
                    EventRecord(
                        jobID: id, seq: i + 1, at: 2000 + Int64(i), kind: e.kind, role: e.role, step: e.step, attempt: e.attempt,
                        callID: e.kind.hasPrefix("call.") ? "c\(i)" : nil, payload: e.payload)))
        }
        ops.append(.setStatus(jobID: id, status: status, reason: reason, at: 5000))
        try await writer.write(ops)
    }

    private typealias E = (kind: String, role: String?, step: Int?, attempt: Int?, payload: JSON)

    private func attempt(_ step: Int, _ attempt: Int, _ verdict: String?, latency: Double = 10, tokens: Int = 0) -> [E] {
        var out: [E] = [
            ("call.started", "actor", step, attempt, ["reask": 0]),
            (
                "call.completed", "actor", step, attempt,
                ["reply": "x", "usage": ["input_tokens": .int(tokens), "output_tokens": 1], "duration_ms": .number(latency)]
            ),
            ("call.started", "critic", step, attempt, ["reask": 0]),
        ]
        if let verdict {
            out.append(
                (
                    "call.completed", "critic", step, attempt,
                    ["reply": "{}", "verdict": ["verdict": .string(verdict), "score": 0.5, "feedback": "f"], "duration_ms": 20]
                ))
        } else {
            out.append(("call.completed", "critic", step, attempt, ["reply": "?", "invalid": "not JSON", "duration_ms": 20]))
        }
        return out
    }

    private func verifier(_ verified: Bool) -> [E] {
        [
            ("call.started", "verifier", nil, nil, ["reask": 0]),
            ("call.completed", "verifier", nil, nil, ["reply": "{}", "verified": .bool(verified)]),
        ]
    }

    private func stats(_ filter: CriticStats.Filter = .init()) throws -> CriticStats {
        let db = try Database(path: directory.databasePath, readOnly: true)
        return try db.criticStats(filter)
    }

    func testRerunsCorrectionsReplansAndOvercorrections() async throws {
        // A: step 0 passes; step 1 fails, then passes; the verifier accepts.
        try await job(
            "A", plan: "p", status: .succeeded,
            attempt(0, 0, "pass", tokens: 100) + attempt(1, 0, "fail") + attempt(1, 1, "pass") + verifier(true))
        // B: step 0 fails twice (exhausted), a re-plan, the new step 0 passes; the verifier rejects.
        try await job(
            "B", plan: "p", status: .failed, reason: "verifier rejected the result: no",
            attempt(0, 0, "fail") + attempt(0, 1, "fail") + [("step.exhausted", nil, 0, nil, ["attempts": 2])]
                + [("job.replanned", "planner", 0, nil, ["replan": 1, "from_step": 0, "steps": ["x"]])] + attempt(0, 0, "pass")
                + verifier(false))
        // C: another plan; a failed actor call, an invalid critic reply, then pass; the job fails on a step.
        try await job(
            "C", plan: "q", status: .failed, reason: "step 2 (do: it) failed 3 attempts and re-plan budget of 0 used; last feedback: f",
            [
                ("call.started", "actor", 0, 0, ["reask": 0]),
                ("call.failed", "actor", 0, 0, ["error": "timeout", "message": "slow", "duration_ms": 5]),
            ]
                + attempt(0, 1, nil) + [("attempt.duplicate", "actor", 0, 2, ["same_as_attempt": 1, "feedback": "f"])]
                + [("call.started", "actor", 0, 2, ["reask": 0])])
        // D: plan p, created later; every step passes, the verifier rejects (not an overcorrection).
        try await job(
            "D", plan: "p", createdAt: 9000, status: .failed, reason: "verifier rejected the result: meh",
            attempt(0, 0, "pass") + verifier(false))

        let all = try stats()
        XCTAssertEqual(all.plans.map(\.plan), ["p", "q"])
        let p = all.plans[0]
        XCTAssertEqual(p.jobs, 3)
        XCTAssertEqual(p.succeeded, 1)
        XCTAssertEqual(p.failed, 2)
        // Steps: A0, A1, B(epoch 0)0, B(epoch 1)0, D0 = 5; attempts 1+2+2+1+1 = 7.
        XCTAssertEqual(p.steps, 5)
        XCTAssertEqual(p.attempts, 7)
        XCTAssertEqual(p.reruns, 2)
        XCTAssertEqual(p.rerunRate ?? -1, 0.4, accuracy: 1e-9)
        XCTAssertEqual(p.stepsWithFailedAttempt, 2)  // A1, B0 (epoch 0)
        XCTAssertEqual(p.correctedSteps, 1)  // A1
        XCTAssertEqual(p.correctionSuccessRate ?? -1, 0.5, accuracy: 1e-9)
        XCTAssertEqual(p.replans, 1)
        XCTAssertEqual(p.verifierRejections, 2)  // B, D
        XCTAssertEqual(p.overcorrections, 1)  // B: a re-planned step passed, then rejected

        let q = all.plans[1]
        XCTAssertEqual(q.steps, 1)
        XCTAssertEqual(q.attempts, 3)
        XCTAssertEqual(q.stepsWithFailedAttempt, 1)  // the duplicate counts as failed
        XCTAssertEqual(q.correctedSteps, 0)

        let actorP = try XCTUnwrap(all.roles.first { $0.plan == "p" && $0.role == "actor" })
        XCTAssertEqual(actorP.calls, 7)
        XCTAssertEqual(actorP.inputTokens, 100)
        XCTAssertEqual(actorP.outputTokens, 7)
        XCTAssertEqual(actorP.meanLatencyMS ?? -1, 10, accuracy: 1e-9)
        let actorQ = try XCTUnwrap(all.roles.first { $0.plan == "q" && $0.role == "actor" })
        XCTAssertEqual(actorQ.calls, 1)
        XCTAssertEqual(actorQ.failedCalls, 1)
        XCTAssertEqual(all.roles.filter { $0.plan == "p" }.map(\.role), ["actor", "critic", "verifier"])

        let failures = all.failures.map { "\($0.plan) \($0.kind) \($0.detail) \($0.count)" }
        XCTAssertEqual(
            failures,
            [
                "p job_reason verifier rejected the result 2",
                "q call_failed actor: timeout 1",
                "q invalid_reply critic 1",
                "q job_reason step N failed N attempts and re-plan budget of N used 1",
            ])

        let since = try stats(.init(sinceMillis: 5000))
        XCTAssertEqual(since.plans.map(\.plan), ["p"])
        XCTAssertEqual(since.plans[0].jobs, 1)
        XCTAssertEqual(since.plans[0].overcorrections, 0)
        let onlyQ = try stats(.init(plan: "q"))
        XCTAssertEqual(onlyQ.plans.map(\.plan), ["q"])
        XCTAssertEqual(onlyQ.json["plans"]?.arrayValue?.first?["attempts"]?.intValue, 3)
    }

    func testLeadingPhrase() {
        XCTAssertEqual(CriticStats.leadingPhrase("verifier rejected the result: nope"), "verifier rejected the result")
        XCTAssertEqual(CriticStats.leadingPhrase("job exceeded its time limit of 30s"), "job exceeded its time limit of Ns")
        XCTAssertEqual(
            CriticStats.leadingPhrase("step 12 (a: b (c)) failed 3 attempts and the plan has no planner to re-plan; last feedback: x"),
            "step N failed N attempts and the plan has no planner to re-plan")
        XCTAssertEqual(CriticStats.leadingPhrase("cancelled by request"), "cancelled by request")
    }

    func testEmptyDatabase() throws {
        let s = try stats()
        XCTAssertTrue(s.plans.isEmpty)
        XCTAssertTrue(s.failures.isEmpty)
    }
}
