import Foundation
import Store
import XCTest

/// `agentd stats` on the database of a real daemon that ran a few jobs.
final class StatsEndToEndTests: EndToEndTestCase {
    /// The re-plan fixture: step 1 fails twice (a rerun), a re-plan replaces it, the new step passes.
    private func runReplanJob(maxReplans: Int = 1) throws -> (id: String, status: String) {
        let plan = try harness.preparePlan("replan.yaml", values: ["MAX_REPLANS": "\(maxReplans)"])
        let result = try harness.cli("submit", plan, "--wait", "--json")
        let job = try parseJSON(result.stdout)
        return (try XCTUnwrap(job["id"]?.stringValue, "\(result)"), job["status"]?.stringValue ?? "?")
    }

    // MARK: stats

    /// Four jobs through the real daemon, then `agentd stats` on its database (read-only, while it runs).
    func testStatsOverJobsRunByTheDaemon() throws {
        try harness.start()
        let w1 = try harness.cli("submit", Locations.shippedPlans + "/w1.yaml", "--wait", "--json")
        XCTAssertEqual(w1.status, 0, "\(w1)")
        XCTAssertEqual(try runReplanJob(maxReplans: 1).status, "succeeded")
        XCTAssertEqual(try runReplanJob(maxReplans: 0).status, "failed")
        let over = try harness.cli("submit", try harness.preparePlan("stats-overcorrect.yaml"), "--wait", "--json")
        XCTAssertEqual(over.status, 1, "\(over)")
        XCTAssertEqual(try parseJSON(over.stdout)["status"]?.stringValue, "failed")

        let result = try harness.cli(["stats", "--db", harness.dbPath, "--json"], socket: false)
        XCTAssertEqual(result.status, 0, "\(result)")
        let stats = try parseJSON(result.stdout)
        let plans = try XCTUnwrap(stats["plans"]?.arrayValue)
        XCTAssertEqual(plans.compactMap { $0["plan"]?.stringValue }, ["replan", "stats-overcorrect", "w1"])
        func plan(_ name: String) throws -> JSON { try XCTUnwrap(plans.first { $0["plan"]?.stringValue == name }) }
        func check(_ name: String, _ expected: [(String, JSON)]) throws {
            let p = try plan(name)
            for (key, value) in expected { XCTAssertEqual(p[key], value, "\(name).\(key) in \(p.encoded)") }
        }
        // w1: 4 steps, the critic fails the first attempt of two of them, both reruns pass.
        try check(
            "w1",
            [
                ("jobs", 1), ("succeeded", 1), ("steps", 4), ("attempts", 6), ("reruns", 2), ("rerun_rate", 0.5),
                ("steps_with_failed_attempt", 2), ("corrected_steps", 2), ("correction_success_rate", 1), ("replans", 0),
                ("verifier_rejections", 0), ("overcorrections", 0),
            ])
        // replan: job 1 = step A (2 failed attempts), re-plan, step X passes; job 2 = step A (2 failed attempts), fails.
        try check(
            "replan",
            [
                ("jobs", 2), ("succeeded", 1), ("failed", 1), ("steps", 3), ("attempts", 5), ("reruns", 2),
                ("steps_with_failed_attempt", 2), ("corrected_steps", 0), ("correction_success_rate", 0), ("replans", 1),
                ("overcorrections", 0),
            ])
        try check(
            "stats-overcorrect",
            [
                ("jobs", 1), ("failed", 1), ("steps", 2), ("attempts", 4), ("reruns", 2), ("rerun_rate", 1),
                ("steps_with_failed_attempt", 1), ("corrected_steps", 1), ("verifier_rejections", 1), ("overcorrections", 1),
            ])
        let roles = try XCTUnwrap(try plan("w1")["roles"]?.arrayValue)
        XCTAssertEqual(roles.compactMap { $0["role"]?.stringValue }, ["planner", "actor", "critic", "verifier"])
        XCTAssertEqual(roles.map { $0["calls"]?.intValue ?? -1 }, [1, 6, 6, 1])
        XCTAssertTrue(roles.allSatisfy { $0["mean_latency_ms"]?.doubleValue != nil })
        let failures = (try plan("stats-overcorrect")["failures"]?.arrayValue ?? []).map {
            "\($0["kind"]?.stringValue ?? "") \($0["detail"]?.stringValue ?? "") \($0["count"]?.intValue ?? 0)"
        }
        XCTAssertEqual(failures, ["call_failed actor: bad_reply 1", "invalid_reply critic 1", "job_reason verifier rejected the result 1"])
        let replanFailures = (try plan("replan")["failures"]?.arrayValue ?? []).map { $0["detail"]?.stringValue ?? "" }
        XCTAssertEqual(replanFailures, ["step N failed N attempts and re-plan budget of N used"])

        // Filters, AGENTD_DB, and the text tables.
        let onlyW1 = try parseJSON(
            try harness.cli(["stats", "--plan", "w1", "--since", "1h", "--json"], socket: false, env: ["AGENTD_DB": harness.dbPath]).stdout)
        XCTAssertEqual(onlyW1["plans"]?.arrayValue?.compactMap { $0["plan"]?.stringValue }, ["w1"])
        let future = try parseJSON(
            try harness.cli(["stats", "--db", harness.dbPath, "--since", "2999-01-01", "--json"], socket: false).stdout)
        XCTAssertEqual(future["plans"]?.arrayValue?.count, 0)
        let text = try harness.cli(["stats", "--db", harness.dbPath], socket: false)
        XCTAssertEqual(text.status, 0, "\(text)")
        let row = try XCTUnwrap(text.stdoutLines.first { $0.hasPrefix("stats-overcorrect ") }, text.stdout)
        XCTAssertEqual(
            row.split(separator: " ").map(String.init),
            ["stats-overcorrect", "1", "0", "1", "2", "4", "2", "100%", "1", "1", "100%", "0", "1", "1"], text.stdout)
        let bad = try harness.cli(["stats", "--db", harness.dbPath, "--since", "yesterday"], socket: false)
        XCTAssertNotEqual(bad.status, 0)
        let missing = try harness.cli(["stats", "--db", harness.dir + "/nothing.db"], socket: false)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("no database at"), missing.stderr)
    }
}
