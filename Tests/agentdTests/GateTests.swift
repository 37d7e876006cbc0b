import Foundation
import Store
import XCTest

/// Gates through the built daemon: a proposed tool call matching a plan's gate runs only after a
/// recorded approval of that exact request — by the critic or by a person over the socket — and a
/// person's wait survives a SIGKILL of the daemon. `ledger.txt` counts how often the gated command ran.
final class GateTests: EndToEndTestCase {
    private let fail = #"{verdict: fail, score: 0, feedback: "never delete with --dangerous; move the files instead"}"#
    private let pass = #"{verdict: pass, score: 1, feedback: "safe enough"}"#

    private func plan(review: String, verdict: String? = nil, timeout: String = "0", onTimeout: String = "fail") throws -> String {
        try harness.preparePlan(
            "gated.yaml",
            values: ["REVIEW": review, "GATE_VERDICT": verdict ?? pass, "TIMEOUT": timeout, "ON_TIMEOUT": onTimeout])
    }

    private var ledger: String { (try? String(contentsOfFile: harness.dir + "/ws/ledger.txt", encoding: .utf8)) ?? "" }

    /// Waits until `id` waits for a person and returns its one waiting gate, as `gate.list` lists it.
    private func waitingGate(_ id: String) throws -> JSON {
        var gate: JSON?
        let found = try waitUntil(timeout: 30, interval: 0.05) {
            gate = try harness.rpc("gate.list")["gates"]?.arrayValue?.first { $0["job"]?.stringValue == id }
            return gate != nil
        }
        let events = try harness.events(id)
        XCTAssertTrue(found, "a gate of \(id) waits: \(dump(events))")
        XCTAssertEqual(try harness.rpc("job.get", ["id": .string(id)])["status"]?.stringValue, "awaiting_approval")
        return try XCTUnwrap(gate)
    }

    func testTheCriticBlocksAndTheActorAdapts() throws {
        try harness.start()
        let id = try submit(try plan(review: "critic", verdict: fail))
        let job = try harness.waitForJob(id)
        let events = try harness.events(id)
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(job.encoded)\n\(summary)")
        XCTAssertEqual(ledger, "", "the blocked command never ran")
        XCTAssertEqual(
            try String(contentsOfFile: harness.dir + "/ws/safe.txt", encoding: .utf8), "safe\n", "the actor's next proposal ran")

        let requested = try XCTUnwrap(self.events(events, kind: "gate.requested").first, summary)
        let gate = try XCTUnwrap(requested["payload"]?["gate"]?.stringValue)
        XCTAssertEqual(requested["payload"]?["tool"]?.stringValue, "run_command")
        let decided = try XCTUnwrap(self.events(events, kind: "gate.decided").first?["payload"], summary)
        XCTAssertEqual(decided["decision"]?.stringValue, "rejected")
        XCTAssertEqual(decided["by"]?.stringValue, "critic")
        XCTAssertEqual(decided["request_sha256"], requested["payload"]?["request_sha256"])
        // The critic was asked about the call itself, before it ran.
        let review = try XCTUnwrap(
            self.events(events, kind: "call.started", role: "critic").first {
                ($0["seq"]?.intValue ?? 0) > (requested["seq"]?.intValue ?? 0)
            })
        XCTAssertTrue(review["payload"]?["request"]?.encoded.contains("Proposed action, not yet run: run_command") == true, review.encoded)
        // The blocked call is recorded as refused, and the actor's next turn reads why.
        let refused = try XCTUnwrap(self.events(events, kind: "tool.completed").first { $0["call"]?.stringValue == gate }, summary)
        XCTAssertEqual(refused["payload"]?["ok"]?.boolValue, false)
        XCTAssertTrue(
            refused["payload"]?["result"]?["error"]?.stringValue?.hasPrefix("blocked by the reviewer before it ran: never delete") == true,
            refused.encoded)
        let next = try XCTUnwrap(self.events(events, kind: "call.started", role: "actor").dropFirst().first)
        XCTAssertTrue(next["payload"]?["request"]?.encoded.contains("blocked by the reviewer before it ran") == true, next.encoded)

        let transcript = try harness.cli("transcript", id)
        XCTAssertTrue(transcript.stdout.contains("gate \(gate) rejected by the critic"), transcript.stdout)
        harness.cleanUpDaemon()
        let replay = try harness.cli(["replay", id, "--db", harness.dbPath], socket: false)
        XCTAssertEqual(replay.status, 0, "\(replay)")
    }

    /// `policy.max_rejections_per_step`: one rejection more ends the step as failed (here the job,
    /// which has no planner to re-plan); the blocked call never ran.
    func testTooManyRejectionsInAStepEndTheStep() throws {
        try harness.start()
        let path = try plan(review: "critic", verdict: fail)
        try (try String(contentsOfFile: path, encoding: .utf8) + "  max_rejections_per_step: 0\n")
            .write(toFile: path, atomically: true, encoding: .utf8)
        let id = try submit(path)
        let job = try harness.waitForJob(id)
        XCTAssertEqual(job["status"]?.stringValue, "failed")
        XCTAssertTrue(
            job["reason"]?.stringValue?.hasPrefix(
                "step 1 (clean up) had 1 proposals rejected, more than policy.max_rejections_per_step (0) and the plan has no planner")
                == true, job.encoded)
        XCTAssertEqual(ledger, "")
        XCTAssertEqual(self.events(try harness.events(id), kind: "tool.started").count, 0, "nothing ran after the step ended")
    }

    /// A critic may approve a call only changed: the change is recorded, reviewed again by the same
    /// rule, and the changed call is what runs.
    func testACriticsEditIsReviewedAgainAndRuns() throws {
        try harness.start()
        let edit =
            #"{verdict: pass, score: 1, feedback: "append, do not run as proposed", arguments: {argv: [sh, -c, "echo edited by the critic >> ledger.txt"]}}"#
        let id = try submit(try plan(review: "critic", verdict: edit))
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        XCTAssertEqual(ledger, "edited by the critic\n")
        let events = try harness.events(id)
        let requested = self.events(events, kind: "gate.requested").compactMap { $0["payload"]?["arguments"]?.stringValue }
        XCTAssertEqual(requested.count, 2, "the changed call was reviewed again: \(dump(events))")
        XCTAssertEqual(try parseJSON(requested[1])["argv"], ["sh", "-c", "echo edited by the critic >> ledger.txt"])
        let decided = self.events(events, kind: "gate.decided").compactMap { $0["payload"] }
        XCTAssertEqual(decided.map { $0["decision"]?.stringValue }, ["approved", "approved"])
        XCTAssertNotNil(decided[0]["edited_arguments"], "the first approval carries the change")
        XCTAssertNil(decided[1]["edited_arguments"], "the second approves the changed call as it stands")
    }

    /// A command critic at a gate approves by its exit status and may end its output with
    /// `{"arguments": …, "confidence": …}`: the changed call is reviewed again and runs.
    func testACommandCriticMayChangeTheCall() throws {
        try harness.start()
        let script = #"""
            [ -n "$AGENTD_GATE" ] || exit 0
            echo "reviewed $AGENTD_GATE: $(cat "$AGENTD_STEP_OUTPUT")"
            echo '{"arguments": {"argv": ["sh", "-c", "echo by the command >> ledger.txt"]}, "confidence": 0.95}'
            """#
        let critic = "{command: [sh, -c, \(JSON.string(script).encoded)]}"
        let path = try plan(review: "critic")
        let text = try String(contentsOfFile: path, encoding: .utf8).replacingOccurrences(
            of: #"critic: {model: script, prompt: "Judge."}"#, with: "critic: \(critic)")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let id = try submit(path)
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        XCTAssertEqual(ledger, "by the command\n")
        let events = try harness.events(id)
        let decided = self.events(events, kind: "gate.decided").compactMap { $0["payload"] }
        XCTAssertEqual(decided.map { $0["decision"]?.stringValue }, ["approved", "approved"], dump(events))
        XCTAssertNotNil(decided.first?["edited_arguments"])
        let verdict = try XCTUnwrap(self.events(events, kind: "call.completed", role: "critic").first?["payload"]?["verdict"])
        XCTAssertEqual(verdict["confidence"]?.doubleValue, 0.95)
        XCTAssertTrue(verdict["feedback"]?.stringValue?.contains(#"reviewed c1.0: {"tool":"run_command""#) == true, verdict.encoded)
    }

    func testAPersonApprovesWithEditedArgumentsAndTheEditedCallRunsOnce() throws {
        try harness.start()
        let id = try submit(try plan(review: "human"))
        let gate = try waitingGate(id)
        let pending = try harness.cli("pending")
        XCTAssertTrue(pending.stdout.contains("\(id) \(gate["gate"]!.stringValue!)"), pending.stdout)
        XCTAssertTrue(pending.stdout.contains("run_command: sh -c \"echo ran >> ledger.txt\" --dangerous"), pending.stdout)
        let edited = #"{"argv":["sh","-c","echo edited >> ledger.txt"]}"#
        let approve = try harness.cli("approve", id, "--note", "edited to be safe", "--edit-args", edited)
        XCTAssertEqual(approve.status, 0, "\(approve)")
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        XCTAssertEqual(ledger, "edited\n", "the edited call ran, once; the proposed one never")

        let events = try harness.events(id)
        let decided = try XCTUnwrap(self.events(events, kind: "gate.decided").first?["payload"], dump(events))
        XCTAssertEqual(decided["decision"]?.stringValue, "approved")
        XCTAssertEqual(decided["by"]?.stringValue, "person")
        XCTAssertEqual(decided["uid"]?.intValue, Int(getuid()))
        XCTAssertEqual(decided["note"]?.stringValue, "edited to be safe")
        XCTAssertEqual(decided["edited_arguments"]?.stringValue, edited)
        let ran = try XCTUnwrap(self.events(events, kind: "tool.started").first { $0["call"] == gate["gate"] })
        XCTAssertEqual(ran["payload"]?["argv"], ["sh", "-c", "echo edited >> ledger.txt"])
        let states = self.events(events, kind: "job.state").compactMap { $0["payload"]?["to"]?.stringValue }
        XCTAssertEqual(states, ["running", "awaiting_approval", "running", "succeeded"])

        // `watch` shows the waiting call with the commands that decide it, then the decision.
        let watched = try harness.cli("watch", id).stdout
        XCTAssertTrue(watched.contains("gate     \(gate["gate"]!.stringValue!) run_command"), watched)
        XCTAssertTrue(watched.contains("approve: agentd approve \(id) \(gate["gate"]!.stringValue!)"), watched)
        XCTAssertTrue(watched.contains("APPROVED by "), watched)
        XCTAssertTrue(watched.contains("awaiting_approval"), watched)

        // The analytics count the gate, the approval and the edit.
        let stats = try harness.cli(["stats", "--json", "--db", harness.dbPath], socket: false)
        let gates = try XCTUnwrap(try parseJSON(stats.stdout)["plans"]?.arrayValue?.first?["gates"], stats.stdout)
        XCTAssertEqual(gates["requested"]?.intValue, 1)
        XCTAssertEqual(gates["approved"]?.intValue, 1)
        XCTAssertEqual(gates["edited"]?.intValue, 1)
        XCTAssertEqual(gates["blocked"]?.intValue, 0)
        XCTAssertGreaterThan(gates["mean_decision_ms"]?.doubleValue ?? -1, 0)
    }

    func testAWaitingGateSurvivesAKillAndItsCallRunsOnce() throws {
        try harness.start()
        let id = try submit(try plan(review: "human"))
        let before = try waitingGate(id)
        try harness.crash()
        try harness.restart()
        let after = try waitingGate(id)
        XCTAssertEqual(after["gate"], before["gate"])
        XCTAssertEqual(after["request_sha256"], before["request_sha256"], "the same request waits")
        XCTAssertEqual(try harness.cli("approve", id).status, 0)
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        XCTAssertEqual(ledger, "ran\n", "the approved call ran exactly once")
        let events = try harness.events(id)
        XCTAssertEqual(self.events(events, kind: "gate.requested").count, 1, "the gate was not asked again: \(dump(events))")
        XCTAssertEqual(self.events(events, kind: "gate.decided").count, 1)
        assertContiguous(events)
    }

    func testStaleDuplicateAndLateDecisionsAreRefused() throws {
        try harness.start()
        let id = try submit(try plan(review: "human"))
        let gate = try waitingGate(id)
        let name = try XCTUnwrap(gate["gate"]?.stringValue)
        let digest = try XCTUnwrap(gate["request_sha256"]?.stringValue)
        func decide(_ digest: String, _ decision: String = "approve", gate: String? = nil) throws -> JSON {
            try harness.connect().request(
                "gate.decide",
                [
                    "id": .string(id), "gate": .string(gate ?? name), "request_sha256": .string(digest), "decision": .string(decision),
                    "note": "because",
                ])
        }
        let stale = try decide(String(repeating: "0", count: 64))
        XCTAssertEqual(stale["error"]?["code"]?.intValue, -32013, stale.encoded)
        XCTAssertTrue(
            stale["error"]?["message"]?.stringValue?.hasPrefix("gate not waiting: stale request: gate \(name) holds the request \(digest)")
                == true)
        let unknown = try decide(digest, gate: "c99.0")
        XCTAssertEqual(unknown["error"]?["code"]?.intValue, -32013, unknown.encoded)
        let bad = try decide(digest, "maybe")
        XCTAssertEqual(bad["error"]?["code"]?.intValue, -32602, bad.encoded)

        let approved = try decide(digest)
        XCTAssertNotNil(approved["result"]?["seq"]?.intValue, approved.encoded)
        let twice = try decide(digest)
        XCTAssertEqual(twice["error"]?["code"]?.intValue, -32013, "a decided gate is not decided again: \(twice.encoded)")
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        let late = try decide(digest, "reject")
        XCTAssertEqual(late["error"]?["code"]?.intValue, -32013, late.encoded)
        XCTAssertTrue(late["error"]?["message"]?.stringValue?.contains("is succeeded") == true, late.encoded)
        XCTAssertEqual(ledger, "ran\n")
        XCTAssertEqual(self.events(try harness.events(id), kind: "gate.decided").count, 1)
    }

    func testAUserOutsideTheApproversMayNotDecide() throws {
        try OtherUser.ensure()
        try harness.start(extraArguments: ["--allow-group", try OtherUser.groupName()])
        OtherUser.openTheWay(harness)
        let id = try submit(try plan(review: "human"))
        let gate = try waitingGate(id)
        let refused = try OtherUser.rpc(
            harness, "gate.decide",
            [
                "id": .string(id), "gate": gate["gate"]!, "request_sha256": gate["request_sha256"]!, "decision": "approve",
            ])
        XCTAssertEqual(refused["error"]?["code"]?.intValue, -32008, refused.encoded)
        XCTAssertTrue(refused["error"]?["message"]?.stringValue?.contains("approvers_group") == true, refused.encoded)
        XCTAssertEqual(try harness.rpc("job.get", ["id": .string(id)])["status"]?.stringValue, "awaiting_approval", "still waiting")
        let recorded = try XCTUnwrap(self.events(try harness.events(id), kind: "gate.refused").first?["payload"])
        XCTAssertEqual(recorded["gate"], gate["gate"])
        XCTAssertEqual(recorded["user"]?.stringValue, OtherUser.name)
        XCTAssertTrue(harness.daemonLog().contains("a gate decision was refused"))
        XCTAssertEqual(ledger, "")
        XCTAssertEqual(try harness.cli("reject", id, "--reason", "not today").status, 0)
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        XCTAssertEqual(ledger, "", "a rejected call never runs")
    }

    func testAnApprovalTimeoutRejectsOrFailsAsThePolicySays() throws {
        try harness.start()
        let rejected = try submit(try plan(review: "human", timeout: "1s", onTimeout: "reject"))
        XCTAssertEqual(try harness.waitForJob(rejected)["status"]?.stringValue, "succeeded", "the actor goes on without the call")
        let decided = try XCTUnwrap(self.events(try harness.events(rejected), kind: "gate.decided").first?["payload"])
        XCTAssertEqual(decided["decision"]?.stringValue, "rejected")
        XCTAssertEqual(decided["by"]?.stringValue, "timeout")

        let failed = try submit(try plan(review: "human", timeout: "1s", onTimeout: "fail"))
        let job = try harness.waitForJob(failed)
        XCTAssertEqual(job["status"]?.stringValue, "failed")
        XCTAssertTrue(job["reason"]?.stringValue?.contains("had no decision within policy.approval_timeout of 1s") == true, job.encoded)
        XCTAssertEqual(ledger, "", "neither ran the call")
    }

    /// A step marked for review (a plan without tools): its output is accepted only after a person
    /// approves it; a rejection reruns the step with the person's reason; an edit is what is accepted.
    func testAReviewedStepWaitsForAPerson() throws {
        try harness.start()
        let id = try submit(try harness.preparePlan("reviewed-step.yaml"))
        let first = try waitingGate(id)
        XCTAssertEqual(first["gate"]?.stringValue, "s1.1")
        XCTAssertEqual(first["tool"]?.stringValue, "step_output")
        let pending = try harness.cli("pending")
        XCTAssertTrue(pending.stdout.contains("the output of the step \"write the announcement\" for review:\n    draft 0"), pending.stdout)
        XCTAssertEqual(try harness.cli("reject", id, "--reason", "say when it ships").status, 0)

        let second = try waitingGate(id)
        XCTAssertEqual(second["gate"]?.stringValue, "s1.2", "the rerun's output waits in turn")
        let bad = try harness.cli("approve", id, "--edit-args", #"{"text":"x"}"#)
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains(#"must be {"output": "the text to accept"}"#), bad.stderr)
        XCTAssertEqual(try harness.cli("approve", id, "--edit-args", #"{"output":"ships on Monday"}"#).status, 0)
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")

        let events = try harness.events(id)
        let rerun = try XCTUnwrap(
            self.events(events, kind: "call.started", role: "actor").first { $0["step"]?.intValue == 0 && $0["attempt"]?.intValue == 1 })
        XCTAssertTrue(rerun["payload"]?["request"]?.encoded.contains("Critic feedback: rejected at review: say when it ships") == true)
        // The verifier reads the accepted outputs: the person's edit for step 1, the unreviewed draft for step 2.
        let verifier = try XCTUnwrap(self.events(events, kind: "call.completed", role: "verifier").last?["payload"]?["raw"]?["stdout"])
        let outputs = try parseJSON(verifier.stringValue ?? "").arrayValue?.compactMap { $0["output"]?.stringValue }
        XCTAssertEqual(outputs, ["ships on Monday", "draft 0"])
    }
}
