import Foundation
import Store
import TestSupport
import XCTest

/// Databases recorded by earlier releases (Tests/Fixtures/records) still verify, replay and render:
/// a change to what agentd stores must keep reading what it stored before.
final class RecordFixtureTests: EndToEndTestCase {
    /// A copy of the fixture (never the fixture itself: opening it migrates it forward).
    private func copy(_ name: String) throws -> String {
        let path = harness.dir + "/" + name
        try FileManager.default.copyItem(atPath: Locations.fixtures + "/records/" + name, toPath: path)
        return path
    }

    private func jobs(_ db: String) throws -> [(id: String, status: String)] {
        try harness.sqlite("SELECT id, status FROM jobs ORDER BY id", db: db).split(separator: "\n").map {
            let columns = $0.split(separator: "|").map(String.init)
            return (columns[0], columns[1])
        }
    }

    func testTheFirstFormatVerifiesReplaysAndRenders() throws {
        try check("agentd-format-1.db", format: 1)
    }

    func testTheSecondFormatVerifiesReplaysAndRenders() throws {
        try check("agentd-format-2.db", format: 2)
    }

    /// Format 3 adds jobs whose replies only its strict rules read as recorded: replaying them under
    /// the rules of formats 1 and 2 would pass the contradictory verdicts.
    func testTheThirdFormatVerifiesReplaysAndRenders() throws {
        try check("agentd-format-3.db", format: 3, added: ["succeeded", "succeeded", "succeeded"], events: 137)
        let db = harness.dir + "/agentd-format-3.db"
        let recorded = try jobs(db)
        let contradictory = try harness.cli(["transcript", recorded[5].id]).stdout
        XCTAssertTrue(contradictory.contains("below the pass threshold 0.5"), contradictory)
        let infeasible = try harness.cli(["transcript", recorded[6].id]).stdout
        XCTAssertTrue(infeasible.contains("judged infeasible after 1 attempt"), infeasible)
        let critic = try harness.cli(["transcript", recorded[7].id]).stdout
        XCTAssertTrue(critic.contains("no banana in: an apple"), critic)
    }

    /// Format 4 records every candidate: a best-of-3 job whose candidates used tools in their own
    /// copies of the workspace, and a tree of candidates that went on with the best of its step.
    func testTheFourthFormatVerifiesReplaysAndRenders() throws {
        try check("agentd-format-4.db", format: 4, added: Array(repeating: "succeeded", count: 5), events: 270)
        let db = harness.dir + "/agentd-format-4.db"
        let recorded = try jobs(db)
        let samples = try harness.cli(["transcript", recorded[8].id]).stdout
        XCTAssertTrue(samples.contains("attempt 1, candidate 2: pass 0.90 ← chosen (passed)"), samples)
        XCTAssertTrue(samples.contains("workspace /tmp/fx/.ws4.agentd-\(recorded[8].id)/r0-s0-a0-k1"), samples)
        let tree = try harness.cli(["transcript", recorded[9].id]).stdout
        XCTAssertTrue(
            tree.contains(
                """
                    attempt 1, candidate 2: fail 0.50 ← chosen (best)
                      attempt 2, candidate 1: fail 0.40
                """), tree)
        XCTAssertTrue(tree.contains("attempt 1, candidate 3: duplicate 0.30"), tree)
        XCTAssertTrue(tree.contains("attempt 2, candidate 3: unusable"), tree)
    }

    /// Verifies, replays and renders every job of the fixture `name`, whose jobs name `format`: the
    /// five jobs every fixture holds, then the `added` ones (by status), `events` events in all.
    private func check(_ name: String, format: Int, added: [String] = [], events: Int = 82) throws {
        let db = try copy(name)
        let formats = try harness.sqlite("SELECT DISTINCT coalesce(json_extract(payload, '$.format'), 1) FROM events WHERE seq = 1", db: db)
        XCTAssertEqual(formats.trimmingCharacters(in: .whitespacesAndNewlines), String(format), "the fixture's jobs are format \(format)")
        let recorded = try jobs(db)
        XCTAssertEqual(recorded.map(\.status), ["succeeded", "succeeded", "succeeded", "failed", "cancelled"] + added)

        // Every recorded payload decodes as its kind's typed value.
        let rows = try harness.sqlite("SELECT kind, payload FROM events ORDER BY job_id, seq", db: db).split(separator: "\n")
        XCTAssertEqual(rows.count, events)
        var kinds: Set<EventKind> = []
        for row in rows {
            let (name, payload) = (row.prefix { $0 != "|" }, row.drop { $0 != "|" }.dropFirst())
            let kind = try XCTUnwrap(EventKind(rawValue: String(name)), "a kind this build knows: \(name)")
            XCTAssertNoThrow(try kind.check(try JSON.parse(String(payload))), "\(kind): \(payload)")
            kinds.insert(kind)
        }
        XCTAssertTrue(kinds.isSuperset(of: [.jobSubmitted, .jobState, .callStarted, .callCompleted, .toolStarted, .toolCompleted]))

        let verify = try harness.run(["audit", "verify", "--all", "--db", db])
        XCTAssertEqual(verify.status, 0, "\(verify)")
        XCTAssertEqual(verify.stdoutLines.last, "OK: \(recorded.count) jobs, \(events) events, every chain verifies")
        let python = try Locations.python()
        for job in recorded {
            let result = try runCapturingOutput(python, [Locations.repoRoot + "/scripts/verify_chain.py", db, job.id])
            XCTAssertEqual(result.status, 0, result.output)
        }
        for job in recorded where job.status != "cancelled" {
            let replay = try harness.run(["replay", job.id, "--db", db])
            XCTAssertEqual(replay.status, 0, "\(replay)")
            XCTAssertTrue(replay.stdout.contains("ended \(job.status) as recorded"), replay.stdout)
        }

        try harness.start(db: db)
        for job in recorded {
            let text = try harness.cli(["transcript", job.id])
            XCTAssertEqual(text.status, 0, "\(text)")
            XCTAssertTrue(text.stdout.contains(job.id), text.stdout)
        }
        let failed = try harness.cli(["transcript", recorded[3].id]).stdout
        XCTAssertTrue(failed.contains("the check failed"), "the verifier's recorded stderr renders: \(failed)")
        let tools = try harness.cli(["transcript", recorded[2].id, "--format", "html", "-o", harness.dir + "/tools.html"])
        XCTAssertEqual(tools.status, 0, "\(tools)")
        let html = try String(contentsOfFile: harness.dir + "/tools.html", encoding: .utf8)
        XCTAssertTrue(html.contains("notes.txt"), "the tool calls render")
    }
}
