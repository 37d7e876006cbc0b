import Foundation
import Store
import XCTest

/// Whole jobs through a real daemon: the shipped plans, re-planning, command models, watching.
final class WorkflowTests: EndToEndTestCase {
    /// W1: 14 calls, two critic fails (steps 1 and 3, attempt 0), each followed by a rerun that
    /// carries the critic's feedback.
    func testW1SubmitWaitAndTranscript() throws {
        try harness.start()
        let submit = try harness.cli("submit", Locations.shippedPlans + "/w1.yaml", "--wait", "--json")
        XCTAssertEqual(submit.status, 0, "\(submit)")
        XCTAssertEqual(submit.stdoutLines.count, 1, "submit --wait --json prints exactly one line: \(submit)")
        let job = try parseJSON(submit.stdoutLines.first ?? "", "submit --wait --json output")
        let id = try XCTUnwrap(job["id"]?.stringValue, "the job has an id")
        XCTAssertFalse(id.isEmpty)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(job.encoded)")

        let transcript = try harness.cli("transcript", id, "--format", "jsonl")
        XCTAssertEqual(transcript.status, 0, "\(transcript)")
        XCTAssertEqual(transcript.stderr, "")
        var events: [JSON] = []
        for (i, line) in transcript.stdoutLines.enumerated() {
            let event = try parseJSON(line, "transcript line \(i + 1)")
            guard case .object = event else { return XCTFail("transcript line \(i + 1) is not an object: \(line)") }
            for key in ["seq", "kind", "role", "step", "attempt"] {
                XCTAssertNotNil(event[key], "transcript line \(i + 1) has '\(key)': \(line)")
            }
            XCTAssertEqual(event["job"]?.stringValue, id)
            events.append(event)
        }
        assertContiguous(events)
        let summary = dump(events)

        let completed = self.events(events, kind: "call.completed")
        XCTAssertEqual(completed.count, 14, "14 completed calls:\n\(summary)")
        var perRole: [String: Int] = [:]
        for e in completed { perRole[e["role"]?.stringValue ?? "?", default: 0] += 1 }
        XCTAssertEqual(perRole, ["planner": 1, "actor": 6, "critic": 6, "verifier": 1], summary)
        XCTAssertEqual(self.events(events, kind: "call.failed").count, 0, summary)

        let verdicts = completed.filter { $0["role"]?.stringValue == "critic" }
        let fails = verdicts.filter { $0["payload"]?["verdict"]?["verdict"]?.stringValue == "fail" }
        XCTAssertEqual(fails.count, 2, "exactly two failing verdicts:\n\(summary)")
        XCTAssertEqual(fails.map { $0["step"]?.intValue }, [1, 3])
        XCTAssertEqual(fails.map { $0["attempt"]?.intValue }, [0, 0])
        XCTAssertEqual(
            verdicts.filter { $0["payload"]?["verdict"]?["verdict"]?.stringValue == "pass" }.count, 4, "the other four verdicts pass")

        for fail in fails {
            let step = try XCTUnwrap(fail["step"]?.intValue)
            let seq = try XCTUnwrap(fail["seq"]?.intValue)
            let feedback = try XCTUnwrap(fail["payload"]?["verdict"]?["feedback"]?.stringValue)
            XCTAssertFalse(feedback.isEmpty)
            // The next call the runner starts is the actor's rerun of the same step.
            let next = try XCTUnwrap(
                events.first { ($0["seq"]?.intValue ?? 0) > seq && $0["kind"]?.stringValue == "call.started" },
                "a call starts after the failing verdict at seq \(seq)")
            XCTAssertEqual(next["role"]?.stringValue, "actor", summary)
            XCTAssertEqual(next["step"]?.intValue, step, summary)
            XCTAssertEqual(next["attempt"]?.intValue, 1, summary)
            let messages = next["payload"]?["request"]?["messages"]?.arrayValue ?? []
            XCTAssertFalse(messages.isEmpty, "the rerun's request is recorded")
            XCTAssertTrue(
                messages.contains { $0["content"]?.stringValue?.contains(feedback) == true },
                "the rerun's request carries the critic's feedback '\(feedback)': \(next.encoded)")
        }

        let show = try harness.cli("show", id, "--json")
        XCTAssertEqual(show.status, 0, "\(show)")
        let shown = try parseJSON(show.stdout)
        XCTAssertEqual(shown["status"]?.stringValue, "succeeded")
        XCTAssertEqual(shown["completed_calls"]?["actor"]?.intValue, 6)
        XCTAssertEqual(shown["completed_calls"]?["critic"]?.intValue, 6)

        // A finished job's answer is kept and served from memory: the same answer, under each request's id.
        let connection = try harness.connect()
        let first = try connection.request("job.get", ["id": .string(id)])
        for requestID in [JSON.string("kept-1"), .int(77), .string("with \"quotes\"")] {
            let message: JSON = .object([
                ("jsonrpc", "2.0"), ("id", requestID), ("method", "job.get"), ("params", ["id": .string(id)]),
            ])
            try connection.send(line: message.encoded)
            let reply = try connection.readMessage()
            XCTAssertEqual(reply["id"], requestID, reply.encoded)
            XCTAssertEqual(reply["result"], first["result"], reply.encoded)
            XCTAssertEqual(reply["jsonrpc"]?.stringValue, "2.0")
        }
        XCTAssertEqual(first["result"]?["completed_calls"]?["verifier"]?.intValue, 1, first.encoded)
    }

    /// The demo's live progress: the plan, a FAIL, the rerun, the PASS of the rerun, VERIFIED, succeeded.
    func testDemoWatchOutput() throws {
        try harness.start()
        let result = try harness.cli(
            "submit", Locations.shippedPlans + "/demo.yaml", "--goal", "write release notes for agentd 0.1", "--watch")
        XCTAssertEqual(result.status, 0, "\(result)")
        let lines = result.stdoutLines
        let text = result.stdout

        func index(_ what: String, after start: Int = 0, where predicate: (String) -> Bool) -> Int? {
            guard start < lines.count else { return nil }
            let found = lines[start...].firstIndex(where: predicate)
            if found == nil { XCTFail("no \(what) line after line \(start) in:\n\(text)") }
            return found
        }
        let first = try XCTUnwrap(lines.first)
        XCTAssertTrue(first.hasPrefix("job ") && first.hasSuffix(" queued"), "first line announces the job: \(first)")
        let id = first.split(separator: " ")[1]

        let plan = try XCTUnwrap(index("planner plan") { $0.contains("planner") && $0.contains("plan of 3 steps") })
        XCTAssertTrue(lines[plan + 1].contains("1. list the user-visible changes in this release"), text)
        XCTAssertTrue(lines[plan + 2].contains("2. draft the notes"), text)
        XCTAssertTrue(lines[plan + 3].contains("3. add an upgrade note"), text)

        let fail = try XCTUnwrap(
            index("FAIL", after: plan) {
                $0.contains("step 2/3") && $0.contains("critic") && $0.contains("attempt 1") && $0.contains("FAIL (score 0.4)")
            })
        XCTAssertTrue(lines[fail].contains("a reader cannot tell what any of them does"), lines[fail])
        XCTAssertTrue(lines[fail + 1].contains("suggestion: Give each change its own sentence"), text)
        let rerun = try XCTUnwrap(
            index("rerun", after: fail) {
                $0.contains("step 2/3") && $0.contains("actor") && $0.contains("attempt 2")
                    && $0.contains("rerun with the critic's feedback")
            })
        let pass = try XCTUnwrap(
            index("PASS of the rerun", after: rerun) {
                $0.contains("step 2/3") && $0.contains("critic") && $0.contains("attempt 2") && $0.contains("PASS")
            })
        let verified = try XCTUnwrap(index("VERIFIED", after: pass) { $0.contains("verifier") && $0.contains("VERIFIED") })
        XCTAssertTrue(lines[verified].contains("The notes list every change"), lines[verified])
        XCTAssertEqual(lines.filter { $0.contains("FAIL") }.count, 1, "one FAIL in:\n\(text)")

        let last = try XCTUnwrap(lines.last)
        XCTAssertTrue(last.hasPrefix("job \(id) succeeded"), "the output ends with the job's success: \(last)")
        XCTAssertEqual(result.stderr, "", "nothing on stderr")
    }

    /// `job.watch` from `since`: exactly the events after it, in order, without gaps, then the job.
    /// Everything a failing verdict says reaches the rerun: feedback, suggestion, first error, failure modes.
    func testTheRerunCarriesEveryFieldOfTheVerdict() throws {
        try harness.start()
        let job = try harness.connect().call("job.submit", ["plan_path": .string(try harness.preparePlan("critic-fields.yaml"))])
        let id = try XCTUnwrap(job["id"]?.stringValue)
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        let events = try harness.events(id)
        let rerun = try XCTUnwrap(
            events.first {
                $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor" && $0["attempt"]?.intValue == 1
            }, dump(events))
        let user = rerun["payload"]?["request"]?["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
        XCTAssertTrue(
            user.hasSuffix(
                """
                Attempt 1 was rejected.
                Rejected output: draft 0
                Critic feedback: the total is wrong
                Suggestion: add the three numbers again
                First error: line 2: 2 + 2 = 5
                Failure modes: arithmetic; unchecked claim
                Revise the output using the feedback.
                """), user)
    }

    func testWatchSinceOnFinishedJob() throws {
        try harness.start()
        let submit = try harness.cli("submit", Locations.shippedPlans + "/w1.yaml", "--wait", "--json")
        XCTAssertEqual(submit.status, 0, "\(submit)")
        let id = try XCTUnwrap(try parseJSON(submit.stdout)["id"]?.stringValue)
        let all = try harness.events(id)
        assertContiguous(all)
        let last = try XCTUnwrap(all.last?["seq"]?.intValue)
        XCTAssertGreaterThan(last, 20)

        for since in [0, 5, last - 1, last] {
            var delivered: [JSON] = []
            let connection = try harness.connect()
            let final = try connection.call("job.watch", ["id": .string(id), "since": .int(since)]) { note in
                XCTAssertEqual(note["method"]?.stringValue, "job.event")
                if let event = note["params"] { delivered.append(event) }
            }
            XCTAssertEqual(final["id"]?.stringValue, id)
            XCTAssertEqual(final["status"]?.stringValue, "succeeded")
            XCTAssertEqual(
                delivered.map { $0["seq"]?.intValue ?? -1 }, Array(stride(from: since + 1, through: last, by: 1)),
                "watch since=\(since) delivers seq \(since + 1)...\(last)")
            // Each names its watch: the request's id (1, the connection's first).
            XCTAssertEqual(
                delivered, Array(all.dropFirst(since)).map { $0.setting("watch", 1) },
                "the delivered events are the recorded ones (since=\(since))")
            // The connection still serves after the watch.
            XCTAssertNotNil(try connection.call("daemon.status")["pid"])
        }

        // The CLI's watch --since --json prints the same events, one per line.
        let watch = try harness.cli("watch", id, "--since", "10", "--json")
        XCTAssertEqual(watch.status, 0, "\(watch)")
        let seqs = try watch.stdoutLines.map { try parseJSON($0)["seq"]?.intValue ?? -1 }
        XCTAssertEqual(seqs, Array(11...last))
    }

    /// A watcher that attaches mid-job with `since` gets the history after `since` and then the live
    /// events, in order, with no gap or repeat at the seam.
    func testWatchSinceWhileRunning() throws {
        try harness.start()
        let plan = try harness.preparePlan("live-watch.yaml")
        let id = try submit(plan)
        // The job is held inside step 0's actor call until the gate file appears.
        try harness.waitForEvent(id, "actor call.started") {
            $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor"
        }
        let before = try harness.events(id)
        XCTAssertGreaterThanOrEqual(before.count, 3, dump(before))
        let since = 2

        let connection = try harness.connect()
        var delivered: [JSON] = []
        var released = false
        let final = try connection.call("job.watch", ["id": .string(id), "since": .int(since)], timeout: 30) { note in
            if let event = note["params"] { delivered.append(event) }
            // Once the history up to now has arrived, let the job go on: the rest arrives live.
            if !released, delivered.count >= before.count - since {
                released = true
                _ = FileManager.default.createFile(atPath: harness.dir + "/gate", contents: Data())
            }
        }
        XCTAssertTrue(released, "the history was delivered before the job went on")
        XCTAssertEqual(final["status"]?.stringValue, "succeeded", "\(final.encoded)")
        let recorded = try harness.events(id)
        assertContiguous(recorded)
        XCTAssertGreaterThan(recorded.count, before.count + 3, "events were recorded after the watch started")
        XCTAssertEqual(
            delivered.map { $0["seq"]?.intValue ?? -1 }, Array((since + 1)...(recorded.count)),
            "live watch delivers every seq after \(since) once, in order")
        XCTAssertEqual(delivered, Array(recorded.dropFirst(since)).map { $0.setting("watch", 1) })
        XCTAssertEqual(delivered.last?["kind"]?.stringValue, "job.state")
        XCTAssertEqual(delivered.last?["payload"]?["to"]?.stringValue, "succeeded")
    }

    /// Re-plan: step 0 exhausts its attempts, the planner's second plan replaces it and the job succeeds.
    func testReplanAfterExhaustedStep() throws {
        try harness.start()
        let plan = try harness.preparePlan("replan.yaml", values: ["MAX_REPLANS": "1"])
        let result = try harness.cli("submit", plan, "--wait", "--json")
        XCTAssertEqual(result.status, 0, "\(result)")
        let job = try parseJSON(result.stdout)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(job.encoded)")
        let id = try XCTUnwrap(job["id"]?.stringValue)
        let events = try harness.events(id)
        let summary = dump(events)
        assertContiguous(events)

        let exhausted = self.events(events, kind: "step.exhausted")
        XCTAssertEqual(exhausted.count, 1, summary)
        XCTAssertEqual(exhausted.first?["step"]?.intValue, 0)
        XCTAssertEqual(exhausted.first?["payload"]?["attempts"]?.intValue, 2)
        let replanned = self.events(events, kind: "job.replanned")
        XCTAssertEqual(replanned.count, 1, summary)
        XCTAssertEqual(replanned.first?["payload"]?["replan"]?.intValue, 1)
        XCTAssertEqual(replanned.first?["payload"]?["steps"], ["replacement step X"])
        XCTAssertLessThan(exhausted[0]["seq"]?.intValue ?? 0, replanned[0]["seq"]?.intValue ?? 0, "exhausted, then re-planned")

        let planner = self.events(events, kind: "call.completed", role: "planner")
        XCTAssertEqual(planner.count, 2, "two planner calls:\n\(summary)")
        let plannerStarts = self.events(events, kind: "call.started", role: "planner")
        let secondRequest = plannerStarts.last?["payload"]?["request"]?["messages"]?.encoded ?? ""
        XCTAssertTrue(secondRequest.contains("original step A"), "the re-plan request names the failed step: \(secondRequest)")

        let critic = self.events(events, kind: "call.completed", role: "critic")
        XCTAssertEqual(critic.map { $0["payload"]?["verdict"]?["verdict"]?.stringValue ?? "?" }, ["fail", "fail", "pass"], summary)
        // After the re-plan the new step is step 0 again and carries no old feedback.
        let lastActor = self.events(events, kind: "call.started", role: "actor").last
        XCTAssertEqual(lastActor?["step"]?.intValue, 0)
        XCTAssertEqual(lastActor?["attempt"]?.intValue, 0)
        XCTAssertTrue(lastActor?["payload"]?["request"]?.encoded.contains("replacement step X") == true)
    }

    /// Without a re-plan budget the exhausted step fails the job, and the reason says which and why.
    func testExhaustedStepWithoutReplanBudgetFails() throws {
        try harness.start()
        let plan = try harness.preparePlan("replan.yaml", values: ["MAX_REPLANS": "0"])
        let result = try harness.cli("submit", plan, "--wait", "--json")
        XCTAssertEqual(result.status, 1, "submit --wait exits 1 for a failed job: \(result)")
        let job = try parseJSON(result.stdout)
        XCTAssertEqual(job["status"]?.stringValue, "failed")
        let reason = try XCTUnwrap(job["reason"]?.stringValue, "a failed job has a reason")
        XCTAssertTrue(reason.contains("step 1"), reason)
        XCTAssertTrue(reason.contains("original step A"), reason)
        XCTAssertTrue(reason.contains("2 attempts"), reason)
        let events = try harness.events(try XCTUnwrap(job["id"]?.stringValue))
        XCTAssertEqual(self.events(events, kind: "step.exhausted").count, 1, dump(events))
        XCTAssertEqual(self.events(events, kind: "job.replanned").count, 0, dump(events))
        XCTAssertEqual(self.events(events, kind: "call.completed", role: "planner").count, 1)
        XCTAssertEqual(self.events(events, kind: "call.started", role: "verifier").count, 0, "a failed step never reaches the verifier")
    }

    /// `command` models: the request goes to the process on stdin, its stdout is the reply, and the
    /// transcript records both exactly.
    func testCommandModelBackend() throws {
        try harness.start()
        let plan = try harness.preparePlan("command-backend.yaml")
        let result = try harness.cli("submit", plan, "--goal", "two \"quoted\" lines", "--wait", "--json")
        XCTAssertEqual(result.status, 0, "\(result)")
        let job = try parseJSON(result.stdout)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(job.encoded)")
        let id = try XCTUnwrap(job["id"]?.stringValue)
        let events = try harness.events(id)
        let summary = dump(events)

        let received = try String(contentsOfFile: harness.dir + "/received.jsonl", encoding: .utf8)
        let requests = try CommandResult.lines(received).map { try parseJSON($0, "request the script received") }
        XCTAssertEqual(requests.count, 2, "the actor script ran once per step:\n\(received)")

        let actorStarts = self.events(events, kind: "call.started", role: "actor")
        let actorDone = self.events(events, kind: "call.completed", role: "actor")
        XCTAssertEqual(actorStarts.count, 2, summary)
        XCTAssertEqual(actorDone.count, 2, summary)
        for (i, started) in actorStarts.enumerated() {
            let recorded = try XCTUnwrap(started["payload"]?["request"], "call.started records the request")
            let got = requests[i]
            // What the process read on stdin is exactly the recorded request.
            XCTAssertEqual(got, recorded, "stdin equals the recorded request")
            XCTAssertTrue(
                got["messages"]?.arrayValue?.contains { $0["content"]?.stringValue?.contains("two \"quoted\" lines") == true } == true,
                "the goal reaches the model in its messages")
            XCTAssertEqual(recorded["step"]?.intValue, i)

            // The raw reply is what the script printed as "content".
            let done = actorDone[i]
            XCTAssertEqual(done["call"], started["call"])
            let reply = try XCTUnwrap(done["payload"]?["reply"]?.stringValue)
            let output = try XCTUnwrap(try parseJSON(reply, "the actor's raw reply")["output"]?.stringValue)
            let stepText = i == 0 ? "write the first line" : "write the second line"
            XCTAssertEqual(output, "echoed by script (step \(i), attempt 0): Step \(i + 1) of 2: \(stepText)")
            XCTAssertNotNil(done["payload"]?["usage"]?["input_tokens"]?.intValue, "usage reported by the command is kept")
        }

        let verdicts = self.events(events, kind: "call.completed", role: "critic")
        XCTAssertEqual(verdicts.count, 2, summary)
        for (i, v) in verdicts.enumerated() {
            XCTAssertEqual(v["payload"]?["verdict"]?["verdict"]?.stringValue, "pass", v.encoded)
            XCTAssertEqual(v["payload"]?["verdict"]?["feedback"]?.stringValue, "judged by script: step \(i) attempt 0")
            let raw = try XCTUnwrap(v["payload"]?["reply"]?.stringValue)
            XCTAssertEqual(try parseJSON(raw)["verdict"]?.stringValue, "pass", "the raw reply is the object the script printed")
        }
    }
}
