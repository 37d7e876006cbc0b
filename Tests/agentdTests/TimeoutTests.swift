import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The policy's time limits on a whole job and on one step, end to end: a real daemon, command models
/// that sleep, and the recorded events that name the limit. (`call_timeout` and `tool_timeout` are
/// covered in `ProtocolErrorTests` and `ToolTests`.)
final class TimeoutTests: EndToEndTestCase {
    /// `policy.job_timeout`: the call in flight is abandoned, its process killed, and the job fails
    /// with the limit as its reason.
    func testJobTimeoutFailsTheJobAndKillsItsCall() throws {
        try harness.start()
        let plan = try harness.preparePlan("job-timeout.yaml")
        let id = try submit(plan)
        let job = try harness.waitForJob(id, timeout: 20)
        XCTAssertEqual(job["status"]?.stringValue, "failed", job.encoded)
        XCTAssertEqual(job["reason"]?.stringValue, "job exceeded its time limit of 1.0s", job.encoded)
        let events = try harness.events(id)
        XCTAssertEqual(self.events(events, kind: "call.started", role: "actor").count, 1, dump(events))
        XCTAssertTrue(
            self.events(events, kind: "call.completed", role: "actor").isEmpty, "the call is abandoned unrecorded:\n\(dump(events))")
        XCTAssertTrue(waitUntil(timeout: 5) { ProcessTable.alive(containing: harness.marker).isEmpty }, "the sleeping command is killed")
        assertKilled(pidsIn: harness.dir + "/grandchildren", count: 1)
    }

    /// `policy.step_timeout` without a planner: the step's time runs out in its first attempt (the
    /// call is abandoned and its process killed, no second attempt starts), `step.timed_out` is
    /// recorded, and the job fails naming the limit.
    func testAStepThatRunsOutOfTimeFailsTheJobWhenNoRePlanIsPossible() throws {
        try harness.start()
        let plan = try harness.preparePlan("step-timeout.yaml")
        let id = try submit(plan)
        let job = try harness.waitForJob(id, timeout: 20)
        let events = try harness.events(id)
        XCTAssertEqual(job["status"]?.stringValue, "failed", dump(events))
        let reason = job["reason"]?.stringValue ?? ""
        XCTAssertTrue(
            reason.hasPrefix(
                "step 1 (a step that takes longer than its time limit) exceeded its time limit of 1s (policy.step_timeout) and the plan has no planner to re-plan"
            ), reason)
        let timedOut = self.events(events, kind: "step.timed_out")
        XCTAssertEqual(timedOut.count, 1, dump(events))
        XCTAssertEqual(timedOut.first?["step"]?.intValue, 0)
        XCTAssertEqual(timedOut.first?["attempt"]?.intValue, 0)
        XCTAssertEqual(timedOut.first?["payload"]?["timeout_s"]?.doubleValue, 1)
        XCTAssertEqual(
            timedOut.first?["payload"]?["reason"]?.stringValue, "the step exceeded its time limit of 1s (policy.step_timeout)")
        XCTAssertEqual(
            self.events(events, kind: "call.started", role: "actor").count, 1, "the limit covers every attempt:\n\(dump(events))")
        XCTAssertTrue(self.events(events, kind: "call.completed", role: "actor").isEmpty, dump(events))
        XCTAssertTrue(self.events(events, kind: "call.failed", role: "actor").isEmpty, "abandoned, not failed:\n\(dump(events))")
        XCTAssertTrue(waitUntil(timeout: 5) { ProcessTable.alive(containing: harness.marker).isEmpty }, "the sleeping command is killed")
        assertKilled(pidsIn: harness.dir + "/grandchildren", count: 1)
        assertContiguous(events)
    }

    /// A step that runs out of time is re-planned, as one that runs out of attempts is, and the job
    /// goes on to succeed with the new plan.
    func testAStepThatRunsOutOfTimeIsRePlanned() throws {
        try harness.start()
        let plan = try harness.preparePlan("step-timeout-replan.yaml")
        _ = FileManager.default.createFile(atPath: harness.dir + "/gate", contents: nil)
        let id = try submit(plan)
        let job = try harness.waitForJob(id, timeout: 20)
        let events = try harness.events(id)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", dump(events))
        XCTAssertEqual(self.events(events, kind: "step.timed_out").count, 1, dump(events))
        let replanned = self.events(events, kind: "job.replanned")
        XCTAssertEqual(replanned.count, 1, dump(events))
        XCTAssertEqual(replanned.first?["payload"]?["steps"]?.arrayValue?.compactMap(\.stringValue), ["quick step"])
        let planner = self.events(events, kind: "call.started", role: "planner")
        XCTAssertEqual(planner.count, 2, dump(events))
        let replanRequest = planner.last?["payload"]?["request"]?["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
        XCTAssertTrue(
            replanRequest.contains("exceeded its time limit of 2s (policy.step_timeout)"), "the planner is told why: \(replanRequest)")
        XCTAssertTrue(waitUntil(timeout: 5) { ProcessTable.alive(containing: harness.marker).isEmpty }, "the sleeping command is killed")
        assertKilled(pidsIn: harness.dir + "/grandchildren", count: 1)
        assertContiguous(events)
    }

    /// After a crash the recorded `step.timed_out` ends the step at the same point: the call it
    /// abandoned is not made again, the re-plan is not repeated, and the job finishes.
    func testARecordedStepTimeoutIsReplayedAfterACrash() throws {
        try harness.start()
        let plan = try harness.preparePlan("step-timeout-replan.yaml")
        let id = try submit(plan)
        // The re-planned step's actor waits for the gate: kill the daemon while it does.
        try harness.waitForEvent(id, timeout: 20, "re-planned actor call") {
            $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor"
                && ($0["payload"]?["request"]?["messages"]?.arrayValue?.last?["content"]?.stringValue ?? "").contains("quick step")
        }
        try harness.crash()
        _ = FileManager.default.createFile(atPath: harness.dir + "/gate", contents: nil)
        try harness.restart()
        let job = try harness.waitForJob(id, timeout: 20)
        let events = try harness.events(id)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", dump(events))
        XCTAssertEqual(self.events(events, kind: "job.resumed").count, 1, dump(events))
        XCTAssertEqual(self.events(events, kind: "step.timed_out").count, 1, dump(events))
        XCTAssertEqual(self.events(events, kind: "job.replanned").count, 1, dump(events))
        let restarted = self.events(events, kind: "call.restarted")
        XCTAssertEqual(restarted.count, 1, "only the call the crash interrupted runs again:\n\(dump(events))")
        let sleepy = self.events(events, kind: "call.started", role: "actor").first { e in
            (e["payload"]?["request"]?["messages"]?.arrayValue?.last?["content"]?.stringValue ?? "").contains("SLEEPY")
        }
        XCTAssertNotNil(sleepy, dump(events))
        XCTAssertNotEqual(restarted.first?["call"]?.stringValue, sleepy?["call"]?.stringValue, "the abandoned call is not made again")
        assertContiguous(events)
    }
}
