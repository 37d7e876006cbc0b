import Foundation
import Store
import XCTest

/// `agentd audit search` against the database of a real daemon that ran real jobs.
final class AuditSearchTests: EndToEndTestCase {
    private var w1: String { Locations.shippedPlans + "/w1.yaml" }

    /// Submits `plans/w1.yaml` with `goal` and waits for it; returns the job id.
    private func runW1(goal: String) throws -> String {
        let result = try harness.cli(["submit", w1, "--goal", goal, "--wait", "--json"], timeout: 60)
        XCTAssertEqual(result.status, 0, "\(result)")
        let job = try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        return try XCTUnwrap(job["id"]?.stringValue)
    }

    private func search(_ arguments: [String]) throws -> CommandResult {
        try harness.cli(["audit", "search"] + arguments + ["--db", harness.dbPath], socket: false)
    }

    private func searchJSON(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws -> [JSON] {
        let result = try search(arguments + ["--json"])
        XCTAssertEqual(result.status, 0, "\(result)", file: file, line: line)
        return try result.stdoutLines.map { try parseJSON($0, "a search hit", file: file, line: line) }
    }

    func testSearchFindsAKnownEventAndTheFiltersNarrowIt() throws {
        try harness.start()
        let first = try runW1(goal: "summarise the quarterly figures")
        let second = try runW1(goal: "summarise the weekly figures")

        // W1's critic fails the first attempt of steps 2 and 4 with "step N: missing detail, be more specific";
        // the record counts them from 0.
        let critic = try searchJSON(["missing detail", "--job", first, "--role", "critic", "--kind", "call.completed"])
        XCTAssertEqual(critic.map { $0["step"]?.intValue }, [3, 1], "newest first: \(critic)")
        // Printed for a person, they count from 1.
        let criticText = try search(["missing detail", "--job", first, "--role", "critic", "--kind", "call.completed"])
        let headers = criticText.stdoutLines.filter { $0.hasPrefix(first) }
        XCTAssertEqual(headers.count, 2, "\(criticText)")
        for (header, hit) in zip(headers, critic) {
            let call = hit["call"]?.stringValue ?? "?"
            let step = (hit["step"]?.intValue ?? -9) + 1
            XCTAssertTrue(header.hasSuffix(" call.completed critic step \(step) attempt 1 \(call)"), "\(criticText)")
        }
        XCTAssertTrue(criticText.stdout.contains("step 4: **missing** **detail**"), "\(criticText)")
        for hit in critic {
            XCTAssertEqual(hit["job"]?.stringValue, first)
            XCTAssertEqual(hit["kind"]?.stringValue, "call.completed")
            XCTAssertEqual(hit["role"]?.stringValue, "critic")
            XCTAssertEqual(hit["attempt"]?.intValue, 0)
            XCTAssertNotNil(hit["seq"]?.intValue)
            XCTAssertNotNil(hit["call"]?.stringValue)
            XCTAssertTrue(hit["snippet"]?.stringValue?.contains("**missing** **detail**") == true, "\(hit)")
        }
        // The hit is the event the transcript has at that seq.
        let events = try harness.events(first)
        let seq = try XCTUnwrap(critic.first?["seq"]?.intValue)
        let event = try XCTUnwrap(events.first { $0["seq"]?.intValue == seq })
        XCTAssertTrue(event["payload"]?["reply"]?.stringValue?.contains("missing detail") == true, dump([event]))

        // The feedback also reaches the candidates' records and the actor's rerun prompts (steps 2
        // and 4), in both jobs.
        XCTAssertEqual(try searchJSON(["missing detail", "--limit", "100"]).count, 12)
        XCTAssertEqual(try searchJSON(["missing detail", "--kind", "candidate.judged"]).count, 4)
        XCTAssertEqual(try searchJSON(["missing detail", "--job", second, "--role", "actor"]).map { $0["attempt"]?.intValue }, [1, 1])
        XCTAssertEqual(try searchJSON(["missing detail", "--kind", "call.started"]).count, 4)
        XCTAssertEqual(try searchJSON(["quarterly"]).map { $0["job"]?.stringValue }.uniqued, [first])
        XCTAssertEqual(try searchJSON(["quarterly OR weekly", "--kind", "job.submitted"]).map { $0["job"]?.stringValue }, [second, first])
        XCTAssertEqual(try searchJSON(["figures", "--limit", "3"]).count, 3)
        XCTAssertEqual(try searchJSON(["figures", "--kind", "job.submitted", "--since", "10m"]).count, 2)
        XCTAssertEqual(try searchJSON(["figures", "--since", "2999-01-01"]).count, 0)
        XCTAssertEqual(try searchJSON(["figures", "--kind", "job.submitted", "--rank"]).count, 2)

        // Readable output: a line per event, then its snippet.
        let text = try search(["quarterly", "--kind", "job.submitted"])
        XCTAssertEqual(text.status, 0, "\(text)")
        XCTAssertEqual(text.stdoutLines.count, 2, "\(text)")
        XCTAssertTrue(text.stdoutLines[0].hasPrefix("\(first) #1 "), "\(text)")
        XCTAssertTrue(text.stdoutLines[0].hasSuffix(" job.submitted"), "\(text)")
        XCTAssertTrue(text.stdoutLines[1].contains("**quarterly**"), "\(text)")
    }

    func testASearchRightAfterAJobFindsItsEvents() throws {
        try harness.start()
        // Right after the reply, before the daemon's idle indexer could have looked (it wakes each second).
        let word = "zq" + String(UInt32.random(in: 100_000...999_999))
        let job = try runW1(goal: "index \(word) now")
        let hits = try searchJSON([word, "--job", job, "--limit", "100"])
        let events = try harness.events(job)
        let mentioning = events.filter { ($0["payload"]?.encoded ?? "").contains(word) }
        XCTAssertFalse(mentioning.isEmpty)
        XCTAssertEqual(
            hits.compactMap { $0["seq"]?.intValue }, mentioning.compactMap { $0["seq"]?.intValue }.reversed(), dump(mentioning))
        XCTAssertEqual(try harness.sqlite("SELECT last_indexed = (SELECT max(id) FROM events) FROM events_fts_progress").trimmed, "1")
    }

    func testTheDaemonIndexesInTheBackgroundWhenIdle() throws {
        try harness.start()
        _ = try runW1(goal: "background indexing")
        let caughtUp = waitUntil(timeout: 15, interval: 0.1) {
            (try? harness.sqlite("SELECT last_indexed = (SELECT max(id) FROM events) FROM events_fts_progress").trimmed) == "1"
        }
        XCTAssertTrue(caughtUp, "the idle daemon indexed every event: \(harness.daemonLog())")
    }

    func testBadQueriesAndMissingDatabasesAreOneLineErrors() throws {
        try harness.start()
        _ = try runW1(goal: "errors")
        for query in ["\"unterminated", "step-1", "AND"] {
            let result = try search([query])
            XCTAssertEqual(result.status, 1, "\(result)")
            XCTAssertEqual(result.stderrLines.count, 1, "\(result)")
            // The daemon's refusal of the param (the same without a daemon).
            XCTAssertTrue(result.stderr.hasPrefix("agentd: invalid params: 'query': bad search query"), "\(result)")
            XCTAssertEqual(result.stdout, "")
        }
        let missing = try harness.cli(["audit", "search", "x", "--db", harness.dir + "/none.db"], socket: false)
        XCTAssertEqual(missing.status, 1, "\(missing)")
        XCTAssertTrue(missing.stderr.contains("no database at"), "\(missing)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: harness.dir + "/none.db"), "nothing is created")
        let since = try search(["x", "--since", "yesterday"])
        XCTAssertNotEqual(since.status, 0)
        XCTAssertTrue(since.stderr.contains("--since"), "\(since)")
    }
}

extension String {
    fileprivate var trimmed: String { trimmingCharacters(in: .whitespacesAndNewlines) }
}

extension Array where Element: Hashable {
    fileprivate var uniqued: [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
