import Foundation
import Store
import XCTest

/// Jury critics through the built daemon: every juror's vote and the decision are recorded, the rule
/// decides (ties, errors and time-outs included), the dissenters' feedback reaches the rerun, and a
/// jury job replays and recovers call for call. The jurors are scripted models of `jury.yaml`, and
/// commands the tests write.
final class JuryTests: EndToEndTestCase {
    private func submitJury(_ jury: String, attempts: Int = 2, check: String = "") throws -> String {
        let plan = try harness.preparePlan("jury.yaml", values: ["JURY": jury, "ATTEMPTS": String(attempts), "CHECK": check])
        let copy = harness.dir + "/jury-\(UInt32.random(in: 0...UInt32.max)).yaml"
        try FileManager.default.moveItem(atPath: plan, toPath: copy)
        return try submit(copy)
    }

    private func payloads(_ events: [JSON], _ kind: String, attempt: Int) -> [JSON] {
        self.events(events, kind: kind).filter { $0["attempt"]?.intValue == attempt }.compactMap { $0["payload"] }
    }

    /// The votes of `attempt` as `name outcome score`, in the order recorded.
    private func votes(_ events: [JSON], attempt: Int) -> [String] {
        payloads(events, "jury.voted", attempt: attempt).map { v in
            "\(v["juror"]?.stringValue ?? "?") \(v["outcome"]?.stringValue ?? "?") \(v["score"].map(\.encoded) ?? "-")"
        }
    }

    private func decision(_ events: [JSON], attempt: Int) throws -> JSON {
        try XCTUnwrap(payloads(events, "jury.decided", attempt: attempt).first, dump(events))
    }

    /// The user message of the actor's request at `attempt`.
    private func actorInput(_ events: [JSON], attempt: Int) -> String {
        let started = self.events(events, kind: "call.started", role: "actor").first { $0["attempt"]?.intValue == attempt }
        return started?["payload"]?["request"]?["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
    }

    // MARK: Majority

    /// A majority of three: at the first draft one juror fails it and one gives no valid verdict,
    /// which counts as a fail (`on_error: fail`, the default): 1 to 2, failed. The rerun reads the
    /// dissenters' feedback, merged and named, and passes 2 to 1. The job replays call for call and
    /// its transcript shows the votes.
    func testAMajorityJuryCountsAnErrorAsAFailAndPassesTheDissentersFeedbackOn() throws {
        try harness.start()
        let id = try submitJury(
            "{jury: [{name: reviewer, model: picky, prompt: 'Check the facts.'}, {model: approves, prompt: 'Check the style.'}, {model: garbled, prompt: 'Check it.'}], rule: majority}"
        )
        let job = try harness.waitForJob(id)
        let events = try harness.events(id)
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", summary)

        let convened = self.events(events, kind: "jury.convened").compactMap { $0["payload"] }
        XCTAssertEqual(convened.count, 2, summary)
        for c in convened {
            XCTAssertEqual(c["rule"]?.stringValue, "majority")
            XCTAssertEqual(c["jurors"], ["reviewer", "juror2", "juror3"])
            XCTAssertEqual(c["order"]?.arrayValue?.compactMap(\.intValue).sorted(), [0, 1, 2], c.encoded)
            XCTAssertNotNil(c["seed"]?.intValue, c.encoded)
        }
        XCTAssertEqual(votes(events, attempt: 0), ["reviewer fail 0.2", "juror2 pass 0.9", "juror3 error -"], summary)
        XCTAssertEqual(votes(events, attempt: 1), ["reviewer pass 0.8", "juror2 pass 0.9", "juror3 error -"], summary)
        let erred = try XCTUnwrap(payloads(events, "jury.voted", attempt: 0).last)
        XCTAssertEqual(erred["error"]?.stringValue?.hasPrefix("no valid verdict: "), true, erred.encoded)

        let first = try decision(events, attempt: 0)
        XCTAssertEqual(first["outcome"]?.stringValue, "fail", first.encoded)
        XCTAssertEqual([first["passes"], first["fails"], first["errors"]].map { $0?.intValue }, [1, 1, 1], first.encoded)
        XCTAssertEqual(first["score"]?.doubleValue, 0.366667, "the mean of 0.2, 0.9 and the error's 0")
        let feedback = try XCTUnwrap(first["feedback"]?.stringValue)
        XCTAssertTrue(
            feedback.hasPrefix(
                "majority: 1 pass, 1 fail, 1 error\nreviewer: the date is missing\njuror3: gave no verdict: no valid verdict: "),
            feedback)
        XCTAssertFalse(feedback.contains("reads well"), "only the dissenters' feedback: \(feedback)")
        let second = try decision(events, attempt: 1)
        XCTAssertEqual(second["outcome"]?.stringValue, "pass", second.encoded)

        // The rerun reads the merged dissent, with the dissenters' suggestion and failure modes.
        let rerun = actorInput(events, attempt: 1)
        XCTAssertTrue(rerun.contains("Critic feedback: \(feedback)"), rerun)
        XCTAssertTrue(rerun.contains("Suggestion: reviewer: add the date"), rerun)
        XCTAssertTrue(rerun.contains("Failure modes: incomplete"), rerun)

        // Each juror is its own critic agent; the garbled one was asked again once
        // (max_invalid_replies: 1), and its vote names its last call.
        let started = self.events(events, kind: "call.started", role: "critic").filter { $0["attempt"]?.intValue == 0 }
        let agents = started.compactMap { $0["payload"]?["agent"]?.stringValue }
        XCTAssertEqual(agents.sorted(), ["critic/\(id)/juror2", "critic/\(id)/juror3", "critic/\(id)/juror3", "critic/\(id)/reviewer"])
        let garbledCalls = started.filter { $0["payload"]?["agent"]?.stringValue == "critic/\(id)/juror3" }.compactMap {
            $0["call"]?.stringValue
        }
        XCTAssertEqual(
            self.events(events, kind: "jury.voted").first { $0["attempt"]?.intValue == 0 && $0["payload"]?["index"]?.intValue == 2 }?[
                "call"]?.stringValue, garbledCalls.last)
        let prompts = [
            "reviewer": ("picky", "Check the facts."), "juror2": ("approves", "Check the style."), "juror3": ("garbled", "Check it."),
        ]
        for call in started {
            let request = call["payload"]?["request"]
            let juror = String(call["payload"]?["agent"]?.stringValue?.split(separator: "/").last ?? "")
            let system = request?["messages"]?.arrayValue?.first?["content"]?.stringValue ?? ""
            XCTAssertEqual(request?["model"]?.stringValue, prompts[juror]?.0, "juror \(juror)'s own model")
            XCTAssertTrue(system.hasPrefix(prompts[juror]?.1 ?? "?"), "juror \(juror)'s own prompt: \(system)")
        }

        let transcript = try harness.cli("transcript", id).stdout
        XCTAssertTrue(transcript.contains("jury (majority): asked in the order "), transcript)
        XCTAssertTrue(transcript.contains("reviewer: FAIL (score 0.20): the date is missing"), transcript)
        XCTAssertTrue(transcript.contains("juror3: ERROR: no valid verdict: "), transcript)
        XCTAssertTrue(transcript.contains("jury decided FAIL by majority: 1 pass, 1 fail, 1 error (score 0.37)"), transcript)

        harness.cleanUpDaemon()
        let result = try harness.cli(["replay", id, "--db", harness.dbPath, "--json"], socket: false)
        let report = try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "replay --json: \(result)")
        XCTAssertEqual(report["matches"]?.boolValue, true, report.encoded)
        // Per attempt: the actor, three jurors and the garbled juror's second try; then the verifier.
        XCTAssertEqual(report["recorded_calls"]?.intValue, 11, report.encoded)
        XCTAssertEqual(report["replayed_calls"]?.intValue, 11, report.encoded)
        XCTAssertEqual(report["replayed_status"]?.stringValue, "succeeded", report.encoded)
    }

    /// Two jurors split 1 to 1 at every attempt: a tie fails, so the step is exhausted.
    func testATiedMajorityFails() throws {
        try harness.start()
        let id = try submitJury("{jury: [{model: approves, prompt: 'A.'}, {model: rejects, prompt: 'B.'}], rule: majority}")
        let job = try harness.waitForJob(id)
        let events = try harness.events(id)
        XCTAssertEqual(job["status"]?.stringValue, "failed", dump(events))
        XCTAssertTrue(job["reason"]?.stringValue?.contains("failed 2 attempts and policy.on_exhausted is fail") == true, job.encoded)
        for attempt in 0..<2 {
            let decided = try decision(events, attempt: attempt)
            XCTAssertEqual(decided["outcome"]?.stringValue, "fail", decided.encoded)
            XCTAssertEqual([decided["passes"], decided["fails"], decided["errors"]].map { $0?.intValue }, [1, 1, 0], decided.encoded)
            XCTAssertEqual(decided["feedback"]?.stringValue, "majority: 1 pass, 1 fail, 0 error\njuror2: the tone is wrong")
        }
    }

    // MARK: Unanimous

    /// A unanimous jury with a command juror that outlives its timeout: its call fails (`timeout`)
    /// and its vote is an error. Under `on_error: abstain` the rerun passes on the other two votes;
    /// under `on_error: fail` the error keeps every attempt from passing.
    func testAUnanimousJuryCountsATimedOutJurorAsOnErrorSays() throws {
        try harness.start()
        let slow = "{name: slow, command: [sleep, '60.\(UInt32.random(in: 100_000..<999_999))'], timeout: 1, sandbox: false}"
        let jurors = "[{model: approves, prompt: 'A.'}, \(slow), {name: facts, model: picky, prompt: 'B.'}]"
        let abstaining = try submitJury("{jury: \(jurors), rule: unanimous, on_error: abstain}")
        let failing = try submitJury("{jury: \(jurors), rule: unanimous}")

        let job = try harness.waitForJob(abstaining, timeout: 60)
        var events = try harness.events(abstaining)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", dump(events))
        XCTAssertEqual(votes(events, attempt: 0), ["juror1 pass 0.9", "slow error -", "facts fail 0.2"], dump(events))
        XCTAssertEqual(votes(events, attempt: 1), ["juror1 pass 0.9", "slow error -", "facts pass 0.8"], dump(events))
        let timedOut = try XCTUnwrap(payloads(events, "jury.voted", attempt: 0).first { $0["juror"]?.stringValue == "slow" })
        XCTAssertEqual(timedOut["error"]?.stringValue?.hasPrefix("the call failed (timeout): "), true, timedOut.encoded)
        let failed = self.events(events, kind: "call.failed", role: "critic")
        XCTAssertEqual(failed.count, 2, "the command juror's call failed at each attempt: \(dump(events))")
        XCTAssertEqual(failed.first?["payload"]?["error"]?.stringValue, "timeout")
        let passed = try decision(events, attempt: 1)
        XCTAssertEqual(passed["outcome"]?.stringValue, "pass", passed.encoded)
        XCTAssertEqual(passed["score"]?.doubleValue, 0.85, "the mean of the counted votes: \(passed.encoded)")
        XCTAssertEqual(
            try decision(events, attempt: 0)["feedback"]?.stringValue, "unanimous: 1 pass, 1 fail, 1 error\nfacts: the date is missing")

        let failedJob = try harness.waitForJob(failing, timeout: 60)
        events = try harness.events(failing)
        XCTAssertEqual(failedJob["status"]?.stringValue, "failed", dump(events))
        let last = try decision(events, attempt: 1)
        XCTAssertEqual(last["outcome"]?.stringValue, "fail", last.encoded)
        XCTAssertEqual([last["passes"], last["fails"], last["errors"]].map { $0?.intValue }, [2, 0, 1], last.encoded)
        let feedback = last["feedback"]?.stringValue ?? ""
        XCTAssertTrue(
            feedback.hasPrefix("unanimous: 2 pass, 0 fail, 1 error\nslow: gave no verdict: the call failed (timeout): "), feedback)
    }

    // MARK: Mean score

    /// `mean_score >= 0.7`: 0.9, 0.5 and 0.6 average 0.666667 and fail; 0.9, 0.6 and 0.6 average
    /// exactly 0.7 and pass — though two of the three jurors voted fail.
    func testAMeanScoreJuryDecidesOnTheMeanAtItsThreshold() throws {
        try harness.start()
        let id = try submitJury(
            "{jury: [{model: approves, prompt: 'A.'}, {model: low, prompt: 'B.'}, {model: middling, prompt: 'C.'}], rule: 'mean_score >= 0.7'}"
        )
        let job = try harness.waitForJob(id)
        let events = try harness.events(id)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", dump(events))
        let first = try decision(events, attempt: 0)
        XCTAssertEqual(first["rule"]?.stringValue, "mean_score >= 0.7")
        XCTAssertEqual(first["outcome"]?.stringValue, "fail", first.encoded)
        XCTAssertEqual(first["score"]?.doubleValue, 0.666667, first.encoded)
        let second = try decision(events, attempt: 1)
        XCTAssertEqual(second["outcome"]?.stringValue, "pass", second.encoded)
        XCTAssertEqual(second["score"]?.doubleValue, 0.7, second.encoded)
        XCTAssertEqual([second["passes"], second["fails"]].map { $0?.intValue }, [1, 2], second.encoded)
        // `agentd watch` prints each vote and the decision.
        let watched = try harness.cli("watch", id).stdout
        for needle in [
            "jury     attempt 1  3 jurors, mean_score >= 0.7; asked in the order ", "jury     attempt 1  juror2 FAIL (score 0.5) thin",
            "jury     attempt 1  FAIL by mean_score >= 0.7 (1 pass, 2 fail, 0 error, score 0.67)",
            "jury     attempt 2  PASS by mean_score >= 0.7 (1 pass, 2 fail, 0 error, score 0.7)",
        ] {
            XCTAssertTrue(watched.contains(needle), "watch lacks \(needle):\n\(watched)")
        }
    }

    // MARK: Against the ground truth

    /// `agentd stats` reads the jury's records: with a ground-truth check (the second draft is the
    /// right one) it scores the jury by its decisions and each juror by its votes, and counts how
    /// often each pair of jurors agreed.
    func testStatsJudgeTheJuryAndEachJurorAgainstTheCheck() throws {
        try harness.start()
        let id = try submitJury(
            "{jury: [{model: approves, prompt: 'A.'}, {name: facts, model: picky, prompt: 'B.'}, {model: rejects, prompt: 'C.'}], rule: majority}",
            check: #"check: {command: [sh, -c, 'grep -q "draft 1" "$AGENTD_STEP_OUTPUT"'], sandbox: false}"#)
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        let stats = try parseJSON(try harness.cli("stats", "--json").stdout)
        let plan = try XCTUnwrap(stats["plans"]?.arrayValue?.first { $0["plan"]?.stringValue == "jury" }, stats.encoded)
        let judges = (plan["judges"]?.arrayValue ?? []).map { j in
            "\(j["juror"]?.stringValue ?? j["judge"]?.stringValue ?? "?"): \(j["judged"]?.intValue ?? -1) judged, \(j["false_passes"]?.intValue ?? -1) false passes, \(j["false_fails"]?.intValue ?? -1) false fails"
        }
        XCTAssertEqual(
            judges.sorted(),
            [
                "facts: 2 judged, 0 false passes, 0 false fails", "juror1: 2 judged, 1 false passes, 0 false fails",
                "juror3: 2 judged, 0 false passes, 1 false fails", "jury: 2 judged, 0 false passes, 0 false fails",
            ], plan.encoded)
        let agreement = (plan["juror_agreement"]?.arrayValue ?? []).map { a in
            "\(a["jurors"]?.arrayValue?.compactMap(\.stringValue).joined(separator: "+") ?? "?"): \(a["agreed"]?.intValue ?? -1)/\(a["outputs"]?.intValue ?? -1)"
        }
        XCTAssertEqual(agreement.sorted(), ["facts+juror3: 1/2", "juror1+facts: 1/2", "juror1+juror3: 0/2"], plan.encoded)
    }

    // MARK: Recovery

    /// SIGKILL while one juror has answered and a command juror still waits for a flag file: the
    /// next daemon asks the command juror again (under the same call id) and not the finished one,
    /// and the job finishes.
    func testACrashMidJuryAsksOnlyTheUnfinishedJurorAgain() throws {
        try harness.start()
        let log = harness.dir + "/juror.log"
        let flag = harness.dir + "/go.flag"
        let waits = "echo \"$AGENTD_CALL_ID\" >> \(log); while [ ! -e \(flag) ]; do sleep 0.05; done; echo judged"
        let id = try submitJury(
            "{jury: [{name: quick, model: approves, prompt: 'A.'}, {name: waits, command: [sh, -c, \(JSON.string(waits).encoded)], sandbox: false}], rule: unanimous}",
            attempts: 1)
        func lines() -> [String] { CommandResult.lines((try? String(contentsOfFile: log, encoding: .utf8)) ?? "") }
        XCTAssertTrue(waitUntil(timeout: 30) { lines().count == 1 }, "the command juror runs")
        let quick = try harness.waitForEvent(id, "the quick juror's reply") { e in
            e["kind"]?.stringValue == "call.completed" && e["role"]?.stringValue == "critic"
        }
        let quickCall = try XCTUnwrap(quick["call"]?.stringValue)

        try harness.crash()
        FileManager.default.createFile(atPath: flag, contents: Data())
        try harness.restart()
        let job = try harness.waitForJob(id)
        let events = try harness.events(id)
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", summary)
        assertContiguous(events)
        let started = self.events(events, kind: "call.started", role: "critic")
        XCTAssertEqual(
            started.filter { $0["call"]?.stringValue == quickCall }.count, 1, "the finished juror is not asked again: \(summary)")
        XCTAssertEqual(started.count, 2, summary)
        let restarted = self.events(events, kind: "call.restarted", role: "critic")
        XCTAssertEqual(restarted.count, 1, summary)
        XCTAssertNotEqual(restarted.first?["call"]?.stringValue, quickCall, summary)
        XCTAssertEqual(lines().count, 2, "the command juror ran again: \(lines())")
        XCTAssertEqual(Set(lines()).count, 1, "under the same call id: \(lines())")
        XCTAssertEqual(self.events(events, kind: "jury.convened").count, 1, summary)
        XCTAssertEqual(votes(events, attempt: 0), ["quick pass 0.9", "waits pass 1"], summary)
    }
}
