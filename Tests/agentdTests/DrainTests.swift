import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// SIGTERM while a job's model call is in flight: the fake server (mode `gate`) holds the call's
/// reply until the test releases it, so every step below waits on an event, never on a clock.
///
/// One SIGTERM drains: the socket goes, the call in flight finishes and is recorded, no other starts,
/// the daemon exits 0 and the restarted daemon finishes the job without making the call again. A
/// second SIGTERM abandons the call at once, unrecorded; the restarted daemon makes it again.
final class DrainTests: EndToEndTestCase {
    /// Starts a daemon with `drainSeconds` and submits `openai-actor.yaml` on a fresh fake server with
    /// the model string `model`; returns once the actor's request is held by the server.
    private func startWithAHeldCall(drainSeconds: Int, model: String) throws -> (server: FakeModelServer, id: String) {
        let server = try FakeModelServer(directory: harness.dir)
        try harness.start(extraArguments: ["--drain-seconds", String(drainSeconds)])
        let plan = try harness.preparePlan("openai-actor.yaml", values: ["BASE_URL": server.baseURL, "MODEL": model, "RETRIES": "0"])
        let id = try submit(plan)
        XCTAssertTrue(
            waitUntil(timeout: 30) { (try? server.stats()["held"]?.intValue) == 1 },
            "the actor's request reaches the server and is held: \((try? server.stats())?.encoded ?? "")")
        return (server, id)
    }

    /// Waits until the daemon's log has `text`.
    private func waitForLog(_ text: String) -> Bool {
        waitUntil(timeout: 30) { harness.lastDaemonLog().contains(text) }
    }

    /// The job's events as `kind role call` lines, read with sqlite3 from the database of a daemon
    /// that has exited.
    private func recorded(_ id: String) throws -> [String] {
        CommandResult.lines(
            try harness.sqlite(
                "SELECT kind || ' ' || coalesce(role, '-') || ' ' || coalesce(call_id, '-') FROM events WHERE job_id = '\(id)' ORDER BY seq"
            ))
    }

    private func status(_ id: String) throws -> String {
        try harness.sqlite("SELECT status FROM jobs WHERE id = '\(id)'").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func assertChainVerifies(_ id: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let verify = try harness.run(["audit", "verify", id, "--db", harness.dbPath])
        XCTAssertEqual(verify.status, 0, "the job's chain verifies: \(verify)", file: file, line: line)
    }

    func testSIGTERMLetsTheCallInFlightFinishRecordsItAndTheRestartedDaemonFinishesTheJob() throws {
        let model = "gate:drain"
        let (server, id) = try startWithAHeldCall(drainSeconds: 600, model: model)
        harness.sendSignal(SIGTERM)
        XCTAssertTrue(waitForLog("stopping: no new jobs"), "the daemon drains: \(harness.lastDaemonLog())")
        XCTAssertTrue(
            waitUntil(timeout: 30) { !FileManager.default.fileExists(atPath: harness.socketPath) },
            "the socket file is removed: nothing new comes in while the call finishes")

        // The call answers: the daemon records it, starts nothing else and exits.
        try server.release()
        let exit = try harness.waitForExit(timeout: 60)
        XCTAssertEqual(exit.status, 0, "the daemon exits 0 once the call in flight has finished: \(harness.daemonLog())")
        XCTAssertEqual(exit.signal, 0)
        XCTAssertEqual(try status(id), "running", "the job is left to resume at the next start")
        let stopped = try recorded(id)
        let started = stopped.filter { $0.hasPrefix("call.started actor ") }
        XCTAssertEqual(started.count, 1, "\(stopped)")
        let call = String(try XCTUnwrap(started.first).split(separator: " ").last ?? "")
        XCTAssertEqual(stopped.last, "call.completed actor \(call)", "the drained call is recorded, and nothing after it: \(stopped)")
        XCTAssertFalse(stopped.contains { $0.hasPrefix("call.started critic") }, "no other call started while draining: \(stopped)")
        let reply = try harness.sqlite(
            "SELECT json_extract(payload, '$.raw.choices[0].message.content') FROM events WHERE job_id = '\(id)' AND kind = 'call.completed'"
        )
        XCTAssertTrue(reply.contains("done: "), "the reply the server gave is recorded: \(reply)")

        // A new daemon resumes the job from the record: the completed call is not made again.
        try harness.restart()
        let job = try harness.waitForJob(id, timeout: 60)
        let events = try harness.events(id)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", dump(events))
        assertContiguous(events)
        XCTAssertEqual(self.events(events, kind: "job.resumed").count, 1, dump(events))
        XCTAssertEqual(self.events(events, kind: "call.completed", role: "actor").count, 1, dump(events))
        XCTAssertEqual(self.events(events, kind: "call.restarted").count, 0, dump(events))
        XCTAssertEqual(self.events(events, kind: "call.completed", role: "critic").count, 1, dump(events))
        XCTAssertEqual(try server.requests(model: model), 1, "the actor's call was made once")
        try assertChainVerifies(id)
    }

    func testASecondSIGTERMAbandonsTheCallInFlightAndTheRestartedDaemonMakesItAgain() throws {
        let model = "gate:twice"
        // A deadline no test waits for: only the second signal can end the drain this soon.
        let (server, id) = try startWithAHeldCall(drainSeconds: 3600, model: model)
        harness.sendSignal(SIGTERM)
        XCTAssertTrue(waitForLog("stopping: no new jobs"), "the daemon drains: \(harness.lastDaemonLog())")
        harness.sendSignal(SIGTERM)
        let exit = try harness.waitForExit(timeout: 60)
        XCTAssertEqual(exit.status, 0, "the second signal ends the drain: \(harness.daemonLog())")
        XCTAssertEqual(exit.signal, 0)
        XCTAssertTrue(harness.lastDaemonLog().contains("second signal: abandoning in-flight calls now"), harness.lastDaemonLog())
        XCTAssertTrue(
            waitUntil(timeout: 30) { (try? server.stats()["held"]?.intValue) == 0 },
            "the abandoned request's connection is closed: \((try? server.stats())?.encoded ?? "")")

        // Abandoned unrecorded: the call started and never ended.
        XCTAssertEqual(try status(id), "running")
        let stopped = try recorded(id)
        let started = stopped.filter { $0.hasPrefix("call.started actor ") }
        XCTAssertEqual(started.count, 1, "\(stopped)")
        XCTAssertEqual(stopped.last, started.first, "nothing is recorded after the call started: \(stopped)")

        // The restarted daemon makes the call again, and this time it answers.
        try harness.restart()
        XCTAssertTrue(
            waitUntil(timeout: 30) { (try? server.stats()["held"]?.intValue) == 1 },
            "the call is made again: \((try? server.stats())?.encoded ?? "")")
        try server.release()
        let job = try harness.waitForJob(id, timeout: 60)
        let events = try harness.events(id)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", dump(events))
        assertContiguous(events)
        let call = self.events(events, kind: "call.started", role: "actor").first?["call"]?.stringValue
        XCTAssertEqual(self.events(events, kind: "call.restarted").map { $0["call"]?.stringValue }, [call], dump(events))
        XCTAssertEqual(self.events(events, kind: "call.completed", role: "actor").count, 1, dump(events))
        XCTAssertEqual(try server.requests(model: model), 2, "the abandoned request, then its rerun")
        let keys = try server.stats()["idempotency_keys"]?[model]?.arrayValue?.compactMap(\.stringValue) ?? []
        XCTAssertEqual(keys, ["\(id)/\(call ?? "?")", "\(id)/\(call ?? "?")"], "the rerun carries the call's idempotency key")
        try assertChainVerifies(id)
    }
}
