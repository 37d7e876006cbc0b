import Foundation
import Store
import TestSupport
import XCTest

/// `agentd audit verify` on databases the real daemon wrote, tampered with by the `sqlite3` CLI the
/// way someone with the file would: the append-only triggers dropped first.
final class AuditTests: EndToEndTestCase {
    /// Runs two W1 jobs to the end and stops the daemon; returns their ids.
    private func twoFinishedJobs() throws -> [String] {
        try harness.start()
        let plan = Locations.shippedPlans + "/w1.yaml"
        let ids = try (0..<2).map { _ in try submit(plan) }
        for id in ids {
            XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        }
        // While the daemon runs, the chains verify too.
        let live = try verify(["--all"])
        XCTAssertEqual(live.status, 0, "\(live)")
        harness.cleanUpDaemon()
        return ids
    }

    /// `agentd audit verify ARGS --db DB` (no socket).
    private func verify(_ arguments: [String], db: String? = nil) throws -> CommandResult {
        try harness.run(["audit", "verify"] + arguments + ["--db", db ?? harness.dbPath])
    }

    /// A fresh copy of the stopped daemon's database with `sql` applied by the `sqlite3` CLI.
    private func tamperedCopy(_ name: String, _ sql: String) throws -> String {
        let copy = harness.dir + "/" + name + ".db"
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: harness.dbPath + suffix) {
            try FileManager.default.copyItem(atPath: harness.dbPath + suffix, toPath: copy + suffix)
        }
        _ = try harness.sqlite(
            "DROP TRIGGER events_append_only_update; DROP TRIGGER events_append_only_delete; " + sql, db: copy)
        return copy
    }

    private func lastSeq(_ job: String) throws -> Int {
        try XCTUnwrap(
            Int(harness.sqlite("SELECT max(seq) FROM events WHERE job_id = '\(job)'").trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    /// Asserts that verifying `job` (and --all) on `db` fails naming the job, `seq` and `message`.
    private func assertFails(
        _ db: String, job: String, seq: Int, _ message: String, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let one = try verify([job], db: db)
        XCTAssertEqual(one.status, 1, "\(one)", file: file, line: line)
        XCTAssertEqual(one.stdoutLines.count, 1, "\(one)", file: file, line: line)
        let printed = one.stdoutLines.first ?? ""
        let named = ["\(job) FAILED at seq \(seq) (", "\(job) FAILED at seq \(seq):"]
        XCTAssertTrue(named.contains { printed.hasPrefix($0) }, printed, file: file, line: line)
        XCTAssertTrue(printed.contains(message), "\(printed) does not say \(message)", file: file, line: line)

        let all = try verify(["--all"], db: db)
        XCTAssertEqual(all.status, 1, "\(all)", file: file, line: line)
        XCTAssertEqual(all.stdoutLines.count, 2, "\(all)", file: file, line: line)
        XCTAssertEqual(all.stdoutLines.first, printed, file: file, line: line)
        XCTAssertTrue(all.stdoutLines.last?.hasPrefix("FAILED: 1 of 2 jobs do not verify") ?? false, "\(all)", file: file, line: line)

        let json = try verify([job, "--json"], db: db)
        XCTAssertEqual(json.status, 1, "\(json)", file: file, line: line)
        let report = try parseJSON(json.stdout, file: file, line: line)
        XCTAssertEqual(report["job"]?.stringValue, job, file: file, line: line)
        XCTAssertEqual(report["ok"]?.boolValue, false, file: file, line: line)
        XCTAssertEqual(report["seq"]?.intValue, seq, file: file, line: line)
    }

    func testUntouchedDatabaseVerifies() throws {
        let ids = try twoFinishedJobs()
        for id in ids {
            let result = try verify([id])
            XCTAssertEqual(result.status, 0, "\(result)")
            let head = try harness.sqlite("SELECT head FROM job_chains WHERE job_id = '\(id)'").trimmingCharacters(
                in: .whitespacesAndNewlines)
            XCTAssertEqual(head.count, 64)
            XCTAssertEqual(result.stdoutLines, ["\(id) OK: \(try lastSeq(id)) events, chain head \(head)"])
        }
        let all = try verify(["--all"])
        XCTAssertEqual(all.status, 0, "\(all)")
        XCTAssertEqual(all.stdoutLines.count, 1, "\(all)")
        XCTAssertTrue(all.stdoutLines.first?.hasPrefix("OK: 2 jobs, ") ?? false, "\(all)")
        let json = try verify(["--all", "--json"])
        XCTAssertEqual(json.status, 0, "\(json)")
        let summary = try parseJSON(json.stdout)
        XCTAssertEqual(summary["ok"]?.boolValue, true)
        XCTAssertEqual(summary["jobs"]?.intValue, 2)
        XCTAssertEqual(summary["failed"]?.arrayValue?.count, 0)

        // Errors that are not findings: exit 2.
        XCTAssertEqual(try verify(["NOSUCHJOB"]).status, 2)
        XCTAssertEqual(try verify(["--all"], db: harness.dir + "/none.db").status, 2)
    }

    func testEditedPayloadIsNamed() throws {
        let ids = try twoFinishedJobs()
        let db = try tamperedCopy(
            "payload", "UPDATE events SET payload = json_set(payload, '$.tampered', 1) WHERE job_id = '\(ids[1])' AND seq = 5;")
        let kind = try harness.sqlite("SELECT kind FROM events WHERE job_id = '\(ids[1])' AND seq = 5").trimmingCharacters(
            in: .whitespacesAndNewlines)
        try assertFails(db, job: ids[1], seq: 5, "(\(kind)): payload or fields edited")
    }

    func testDeletedEventIsNamed() throws {
        let ids = try twoFinishedJobs()
        let db = try tamperedCopy("deleted", "DELETE FROM events WHERE job_id = '\(ids[0])' AND seq = 7;")
        try assertFails(db, job: ids[0], seq: 7, "event seq 7 missing (deleted)")
    }

    func testReorderedEventsAreNamed() throws {
        let ids = try twoFinishedJobs()
        let db = try tamperedCopy(
            "reordered",
            """
            UPDATE events SET seq = 1000 WHERE job_id = '\(ids[0])' AND seq = 3;
            UPDATE events SET seq = 3 WHERE job_id = '\(ids[0])' AND seq = 4;
            UPDATE events SET seq = 4 WHERE job_id = '\(ids[0])' AND seq = 1000;
            """)
        try assertFails(db, job: ids[0], seq: 3, "out of order")
    }

    func testEditedChainHeadIsNamed() throws {
        let ids = try twoFinishedJobs()
        let db = try tamperedCopy(
            "head",
            "UPDATE job_chains SET head = (SELECT hash FROM events WHERE job_id = '\(ids[1])' AND seq = 2) WHERE job_id = '\(ids[1])';")
        try assertFails(
            db, job: ids[1], seq: try lastSeq(ids[1]), "chain head does not match the last event (edited or events removed from the end)")
        // Cutting the last event off is the same finding, one event earlier.
        let cut = try tamperedCopy("cut", "DELETE FROM events WHERE job_id = '\(ids[1])' AND seq = \(try lastSeq(ids[1]));")
        try assertFails(cut, job: ids[1], seq: try lastSeq(ids[1]) - 1, "chain head does not match the last event")
    }

    /// The job's row is what recovery and replay run from: an edit of its plan snapshot, goal, inputs
    /// or working directory is named by `audit verify` and by the Python verifier, though no event
    /// changed.
    func testAnEditedPlanSnapshotOrGoalIsNamed() throws {
        let ids = try twoFinishedJobs()
        let script = Locations.repoRoot + "/scripts/verify_chain.py"
        let python = try Locations.python()
        let plan = try tamperedCopy(
            "plan", "UPDATE jobs SET plan = replace(plan, '\"max_attempts\":3', '\"max_attempts\":9') WHERE id = '\(ids[0])';")
        XCTAssertNotEqual(
            try harness.sqlite("SELECT plan FROM jobs WHERE id = '\(ids[0])'", db: plan),
            try harness.sqlite("SELECT plan FROM jobs WHERE id = '\(ids[0])'"), "the plan snapshot was edited")
        try assertFails(plan, job: ids[0], seq: 1, "the job's stored plan snapshot (jobs.plan, which recovery and replay run)")
        let pythonPlan = try runCapturingOutput(python, [script, plan, ids[0]])
        XCTAssertNotEqual(pythonPlan.status, 0)
        XCTAssertTrue(pythonPlan.output.contains("the stored plan snapshot differs"), pythonPlan.output)

        let goal = try tamperedCopy("goal", "UPDATE jobs SET goal = 'something else' WHERE id = '\(ids[0])';")
        try assertFails(goal, job: ids[0], seq: 1, "the job's stored goal, inputs or working directory")
        let pythonGoal = try runCapturingOutput(python, [script, goal, ids[0]])
        XCTAssertNotEqual(pythonGoal.status, 0)
        XCTAssertTrue(pythonGoal.output.contains("the stored goal, inputs or cwd differ"), pythonGoal.output)
    }

    /// The Python verifier `scripts/verify_chain.py` (docs/audit.md) accepts the daemon's chains and
    /// rejects an edited one: the documented encoding is the real one.
    func testDocumentedPythonVerifierAgrees() throws {
        let ids = try twoFinishedJobs()
        let script = Locations.repoRoot + "/scripts/verify_chain.py"
        let python = try Locations.python()
        for id in ids {
            let result = try runCapturingOutput(python, [script, harness.dbPath, id])
            XCTAssertEqual(result.status, 0, "\(result.output)")
            let head = try harness.sqlite("SELECT head FROM job_chains WHERE job_id = '\(id)'").trimmingCharacters(
                in: .whitespacesAndNewlines)
            XCTAssertEqual(result.output, "\(id) OK: \(try lastSeq(id)) events, chain head \(head)\n")
        }
        let db = try tamperedCopy("py", "UPDATE events SET payload = '{}' WHERE job_id = '\(ids[0])' AND seq = 2;")
        let tampered = try runCapturingOutput(python, [script, db, ids[0]])
        XCTAssertNotEqual(tampered.status, 0)
        XCTAssertTrue(tampered.output.contains("seq 2 does not match"), tampered.output)

        // The docs point to the script rather than copying it: a copy could drift from what runs.
        for doc in ["ARCHITECTURE.md", "docs/audit.md"] {
            let text = try String(contentsOfFile: Locations.repoRoot + "/" + doc, encoding: .utf8)
            XCTAssertTrue(text.contains("scripts/verify_chain.py"), "\(doc) points to the verifier")
            XCTAssertFalse(text.contains("```python"), "\(doc) holds no copy of the verifier")
        }
    }
}
