import Foundation
import Store
import XCTest

/// `policy.samples` through the built daemon: an attempt's candidates run concurrently, each in its
/// own copy of the workspace; the best-scored passing one goes on and only its files stay; the
/// candidates' parents form the step's tree; `on_exhausted: best` picks across candidates; `agentd
/// replay` and crash recovery reproduce such jobs call for call.
final class SamplesTests: EndToEndTestCase {
    /// The plan of three candidates with tools (Tests/Fixtures/plans/samples.yaml), its sync directory
    /// made. `hold` holds sample 1's command until the file `release` appears.
    private func samplesPlan(hold: Bool = false) throws -> String {
        try FileManager.default.createDirectory(atPath: harness.dir + "/sync", withIntermediateDirectories: true)
        let wait = "if [ {sample} = 1 ]; then until [ -e \(harness.dir)/release ]; do sleep 0.05; done; fi;"
        return try harness.preparePlan("samples.yaml", values: ["HOLD": hold ? wait : ""])
    }

    private var workspace: String { harness.dir + "/ws" }

    /// What each candidate's commands wrote to the ledger, one sample per line, in any order.
    private func ledger() throws -> [String] {
        try String(contentsOfFile: harness.dir + "/ledger", encoding: .utf8).split(separator: "\n").map(String.init).sorted()
    }

    private func payloads(_ events: [JSON], _ kind: String) -> [JSON] {
        self.events(events, kind: kind).compactMap { $0["payload"] }
    }

    func testBestOfThreeKeepsTheHighestScoredPassAndOnlyItsFiles() throws {
        try harness.start()
        let id = try submit(try samplesPlan())
        let job = try harness.waitForJob(id)
        let events = try harness.events(id)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", dump(events))

        let started = payloads(events, "candidate.started")
        XCTAssertEqual(started.map { $0["sample"]?.intValue }, [0, 1, 2], dump(events))
        XCTAssertEqual(started.map { $0["temperature"]?.doubleValue }, [0.2, 0.30000000000000004, 0.4], "each sample warmer")
        let copies = started.compactMap { $0["workspace"]?.stringValue }
        XCTAssertEqual(Set(copies).count, 3, "three private copies: \(copies)")
        XCTAssertEqual(
            payloads(events, "candidate.judged").map { "\($0["outcome"]?.stringValue ?? "?") \($0["score"]?.doubleValue ?? -1)" },
            ["pass 0.6", "pass 0.9", "pass 0.7"])
        let chosen = try XCTUnwrap(payloads(events, "candidate.chosen").first, dump(events))
        XCTAssertEqual(chosen["sample"]?.intValue, 1, "the highest-scored pass")
        XCTAssertEqual(chosen["reason"]?.stringValue, "passed")
        XCTAssertEqual(chosen["workspace"]?.stringValue, copies[1])

        // The three ran at once: each waited for the others to write before it listed its workspace,
        // and saw only its own files.
        let listings = self.events(events, kind: "tool.completed").compactMap { $0["payload"]?["result"]?["stdout"]?.stringValue }
        XCTAssertEqual(
            listings.sorted(),
            (0..<3).map { "answer.txt\nmine-\($0).txt\nfrom candidate \($0)" }, "each candidate saw its own workspace only")
        let calls = Set(self.events(events, kind: "call.started", role: "actor").compactMap { $0["call"]?.stringValue })
        XCTAssertEqual(calls, Set((1...3).flatMap { k in (1...3).map { "c1-\(k)-\($0)" } }), "branch call ids")

        // Only the chosen candidate's files are the job's; the copies are gone.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: workspace).sorted(), ["answer.txt", "mine-1.txt"])
        XCTAssertEqual(try String(contentsOfFile: workspace + "/answer.txt", encoding: .utf8), "from candidate 1")
        XCTAssertFalse(FileManager.default.fileExists(atPath: harness.dir + "/.ws.agentd-\(id)"), "the copies were removed")
        XCTAssertEqual(try ledger(), ["0", "1", "2"])

        let transcript = try harness.cli("transcript", id).stdout
        XCTAssertTrue(transcript.contains("judged PASS (score 0.90) — chosen: the best-scored pass"), transcript)
        XCTAssertTrue(transcript.contains("attempt 1, candidate 2: pass 0.90 ← chosen (passed)"), transcript)
        let watched = try harness.cli("watch", id).stdout
        for line in [
            "attempt 1  candidate 1 (temperature 0.2)", "attempt 1  candidate 2 (temperature 0.3)",
            "attempt 1, candidate 3  tool run_command ok (exit status 0)", "attempt 1, candidate 2  judged pass, score 0.9",
            "going on with attempt 1, candidate 2: the best-scored pass",
        ] {
            XCTAssertTrue(watched.contains(line), "watch shows '\(line)':\n\(watched)")
        }
    }

    func testACommandCriticAndTheCheckJudgeEachCandidateInItsOwnCopy() throws {
        try harness.start()
        let id = try submit(try harness.preparePlan("samples-critic.yaml"))
        let job = try harness.waitForJob(id)
        let events = try harness.events(id)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", dump(events))
        let copies = payloads(events, "candidate.started").compactMap { $0["workspace"]?.stringValue }
        XCTAssertEqual(copies.count, 3)
        let checks = Set(self.events(events, kind: "step.checked").compactMap { $0["call"]?.stringValue })
        let critic = self.events(events, kind: "call.completed", role: "critic").filter { !checks.contains($0["call"]?.stringValue ?? "") }
            .compactMap { $0["payload"]?["raw"] }
        XCTAssertEqual(critic.map { $0["cwd"]?.stringValue }, copies, "each judged in its copy")
        XCTAssertEqual(critic.map { $0["stdout"]?.stringValue }, (0..<3).map { "from candidate \($0)" })
        XCTAssertEqual(payloads(events, "candidate.judged").map { $0["outcome"]?.stringValue }, ["fail", "fail", "pass"])
        XCTAssertEqual(
            payloads(events, "step.checked").map { "\($0["sample"]?.intValue ?? -1) \($0["passed"]?.boolValue ?? false)" },
            ["0 false", "1 true", "2 false"], "the check ran on each candidate, in its copy")
        XCTAssertEqual(payloads(events, "candidate.chosen").first?["sample"]?.intValue, 2)
        XCTAssertEqual(try String(contentsOfFile: workspace + "/answer.txt", encoding: .utf8), "from candidate 2")
    }

    func testAModelCriticsToolsReadTheCandidatesCopy() throws {
        try harness.start()
        let id = try submit(try harness.preparePlan("samples-critic-tools.yaml"))
        let job = try harness.waitForJob(id)
        let events = try harness.events(id)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", dump(events))
        let read = self.events(events, kind: "tool.completed", role: "critic").compactMap {
            $0["payload"]?["result"]?["content"]?.stringValue
        }
        XCTAssertEqual(read, (0..<3).map { "from candidate \($0)" }, "each candidate's file, read in its own copy")
        XCTAssertEqual(payloads(events, "candidate.chosen").first?["sample"]?.intValue, 1)
        XCTAssertEqual(try String(contentsOfFile: workspace + "/answer.txt", encoding: .utf8), "from candidate 1")
    }

    func testAJuryJudgesEachCandidate() throws {
        try harness.start()
        let id = try submit(try harness.preparePlan("samples-jury.yaml"))
        let job = try harness.waitForJob(id)
        let events = try harness.events(id)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", dump(events))
        XCTAssertEqual(payloads(events, "jury.decided").map { $0["outcome"]?.stringValue }, ["fail", "pass", "fail"])
        XCTAssertEqual(
            payloads(events, "candidate.judged").map { "\($0["outcome"]?.stringValue ?? "?") \($0["score"]?.doubleValue ?? -1)" },
            ["fail 0.5", "pass 1.0", "fail 0.5"])
        XCTAssertEqual(payloads(events, "candidate.chosen").first?["sample"]?.intValue, 1)
        XCTAssertEqual(try verifiedOutputs(events), ["draft 1"])
        harness.cleanUpDaemon()
        XCTAssertEqual(try harness.cli(["replay", id, "--db", harness.dbPath], socket: false).status, 0)
    }

    func testParentsFormTheTreeAndDuplicatesAndUnusableCandidatesAreRecorded() throws {
        try harness.start()
        let id = try submit(
            try harness.preparePlan("samples-tree.yaml", values: ["VERDICT": "pass", "SCORE0": "0.8", "SCORE1": "0.8"]))
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        let events = try harness.events(id)
        let started = self.events(events, kind: "candidate.started")
        let tree = started.map { e -> String in
            let p = e["payload"]?["parent"]
            let parent = p.map { "\($0["attempt"]?.intValue ?? -1).\($0["sample"]?.intValue ?? -1)" } ?? "-"
            return "\(e["attempt"]?.intValue ?? -1).\(e["payload"]?["sample"]?.intValue ?? -1)<\(parent)"
        }
        XCTAssertEqual(tree, ["0.0<-", "0.1<-", "0.2<-", "1.0<0.1", "1.1<0.1", "1.2<0.1"], "the rerun revises the best scored")
        let judged = self.events(events, kind: "candidate.judged").map {
            "\($0["attempt"]?.intValue ?? -1).\($0["payload"]?["sample"]?.intValue ?? -1) \($0["payload"]?["outcome"]?.stringValue ?? "?")"
        }
        XCTAssertEqual(judged, ["0.0 fail", "0.1 fail", "0.2 duplicate", "1.0 pass", "1.1 pass", "1.2 unusable"], dump(events))
        XCTAssertEqual(self.events(events, kind: "call.started", role: "critic").count, 4, "the duplicate and the unusable are not judged")
        let chosen = try XCTUnwrap(self.events(events, kind: "candidate.chosen").first)
        XCTAssertEqual(chosen["attempt"]?.intValue, 1)
        XCTAssertEqual(chosen["payload"]?["sample"]?.intValue, 0, "a tie goes to the lowest sample")
        // The rerun's prompt carries its parent's output and feedback.
        let rerun = try XCTUnwrap(
            self.events(events, kind: "call.started", role: "actor").first { $0["attempt"]?.intValue == 1 }?["payload"]?["request"]?[
                "messages"]?.arrayValue?.last?["content"]?.stringValue)
        XCTAssertTrue(rerun.contains("Rejected output: draft a0 k1\nCritic feedback: closer"), rerun)
        XCTAssertEqual(try verifiedOutputs(events), ["draft a1 k0"])

        let transcript = try harness.cli("transcript", id).stdout
        XCTAssertTrue(
            transcript.contains(
                """
                    attempt 1, candidate 2: fail 0.50
                      attempt 2, candidate 1: pass 0.80 ← chosen (passed)
                """), transcript)
        let html = try harness.cli("transcript", id, "--format", "html").stdout
        XCTAssertTrue(html.contains(#"<li data-attempt="1" data-sample="0" data-parent="0.1">"#), html)
    }

    func testOnExhaustedBestGoesOnWithTheBestCandidateOfTheStep() throws {
        try harness.start()
        let id = try submit(
            try harness.preparePlan("samples-tree.yaml", values: ["VERDICT": "fail", "SCORE0": "0.4", "SCORE1": "0.45"]))
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        let events = try harness.events(id)
        let exhausted = try XCTUnwrap(self.events(events, kind: "step.exhausted").first?["payload"])
        XCTAssertEqual(exhausted["best_attempt"]?.intValue, 0)
        XCTAssertEqual(exhausted["best_score"]?.doubleValue, 0.5)
        let chosen = try XCTUnwrap(self.events(events, kind: "candidate.chosen").first, dump(events))
        XCTAssertEqual(chosen["attempt"]?.intValue, 0)
        XCTAssertEqual(chosen["payload"]?["sample"]?.intValue, 1)
        XCTAssertEqual(chosen["payload"]?["reason"]?.stringValue, "best")
        XCTAssertEqual(try verifiedOutputs(events), ["draft a0 k1"], "the best-scored candidate of the step is its output")
        let transcript = try harness.cli("transcript", id).stdout
        XCTAssertTrue(
            transcript.contains("the job goes on with attempt 1, candidate 2 (score 0.5), the best scored (policy.on_exhausted: best)"),
            transcript)
    }

    func testReplayReproducesASamplesJobCallForCall() throws {
        try harness.start()
        let id = try submit(try samplesPlan())
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        harness.cleanUpDaemon()
        let replay = try harness.cli(["replay", id, "--db", harness.dbPath], socket: false)
        XCTAssertEqual(replay.status, 0, "\(replay)")
        XCTAssertTrue(replay.stdout.contains("the same 13 calls in the same order, same requests"), replay.stdout)
    }

    func testSIGKILLMidSamplesRecoversWithoutRepeatingCompletedCandidates() throws {
        try harness.start()
        let id = try submit(try samplesPlan(hold: true))
        // Samples 0 and 2 ran their commands; sample 1's is held.
        for k in [1, 3] {
            _ = try harness.waitForEvent(id, timeout: 30, "c1-\(k)-2.0 completed") {
                $0["kind"]?.stringValue == "tool.completed" && $0["call"]?.stringValue == "c1-\(k)-2.0"
            }
        }
        _ = try harness.waitForEvent(id, timeout: 30, "c1-2-2.0 started") {
            $0["kind"]?.stringValue == "tool.started" && $0["call"]?.stringValue == "c1-2-2.0"
        }
        XCTAssertTrue(waitUntil(timeout: 30) { (try? ledger()) == ["0", "1", "2"] }, "all three commands started")
        try harness.crash(killOrphans: true)
        FileManager.default.createFile(atPath: harness.dir + "/release", contents: nil)
        try harness.restart()
        let job = try harness.waitForJob(id, timeout: 60)
        let events = try harness.events(id)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", dump(events))
        assertContiguous(events)

        XCTAssertEqual(try ledger(), ["0", "1", "1", "2"], "only the interrupted candidate's command ran again")
        XCTAssertEqual(self.events(events, kind: "tool.restarted").compactMap { $0["call"]?.stringValue }, ["c1-2-2.0"])
        var starts: [String: Int] = [:]
        var completions: [String: Int] = [:]
        for e in events {
            guard let call = e["call"]?.stringValue else { continue }
            switch e["kind"]?.stringValue {
            case "call.started", "tool.started": starts[call, default: 0] += 1
            case "call.completed", "call.failed", "tool.completed": completions[call, default: 0] += 1
            default: break
            }
        }
        XCTAssertEqual(starts.filter { $0.value > 1 }, [:], "nothing recorded as started twice:\n\(dump(events))")
        XCTAssertEqual(completions.filter { $0.value > 1 }, [:], "nothing completed twice:\n\(dump(events))")
        XCTAssertEqual(self.events(events, kind: "candidate.started").count, 3, "the candidates are the same three")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: workspace).sorted(), ["answer.txt", "mine-1.txt"])
        XCTAssertEqual(try String(contentsOfFile: workspace + "/answer.txt", encoding: .utf8), "from candidate 1")
        XCTAssertFalse(FileManager.default.fileExists(atPath: harness.dir + "/.ws.agentd-\(id)"), "the copies were removed")
    }

    /// The step outputs the command verifier was given.
    private func verifiedOutputs(_ events: [JSON]) throws -> [String]? {
        let stdout = try XCTUnwrap(self.events(events, kind: "call.completed", role: "verifier").last?["payload"]?["raw"]?["stdout"])
        return try parseJSON(stdout.stringValue ?? "").arrayValue?.compactMap { $0["output"]?.stringValue }
    }
}
