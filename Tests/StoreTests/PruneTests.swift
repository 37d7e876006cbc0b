import Foundation
import XCTest

@testable import Store

/// Pruning removes whole finished jobs only — rows, events, chain heads, search entries — records
/// each one, and leaves every other job's chain whole.
final class PruneTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var writer: StoreWriter!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
        writer = try StoreWriter(path: directory.databasePath, clock: ManualClock(9_000))
        writer.start()
    }

    override func tearDown() {
        writer.close()
        directory.remove()
    }

    /// A job with `events` events (each with a word of its own to search for), ended with `status` at `finishedAt`.
    private func job(_ id: String, events: Int = 3, status: JobStatus, finishedAt: Int64 = 0) async throws {
        try await writer.write(
            [.insertJob(Rows.job(id))]
                + (1...events).map { .append(Rows.event(id, seq: $0, payload: ["text": .string("word\(id) event \($0)")])) })
        if status != .queued {
            try await writer.write([.setStatus(jobID: id, status: status, reason: nil, at: finishedAt)])
        }
    }

    private func db() throws -> Database { try Database(path: directory.databasePath) }

    private func count(_ db: Database, _ sql: String) throws -> Int64 { try db.query(sql)[0][0].int ?? -1 }

    private func searchHits(_ db: Database, _ word: String) throws -> [String] {
        try SearchIndex.search(db, SearchQuery(text: word, limit: 100)).map(\.jobID)
    }

    /// Every job's chain, and the search index against its content.
    private func assertEverythingVerifies(_ db: Database, file: StaticString = #filePath, line: UInt = #line) throws {
        for id in try db.allJobIDs() {
            XCTAssertNil(try db.verifyChain(jobID: id)?.problem, "job \(id)", file: file, line: line)
        }
        XCTAssertNoThrow(try db.execute("INSERT INTO events_fts(events_fts) VALUES ('integrity-check')"), file: file, line: line)
        // FTS5 cannot check an index against a view, so compare its documents with the events it
        // should hold: every event up to its progress mark that has text, and nothing else.
        try db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.index_terms USING fts5vocab(main, events_fts, 'instance')")
        XCTAssertEqual(
            try db.query("SELECT DISTINCT doc FROM temp.index_terms ORDER BY doc"),
            try db.query(
                """
                SELECT id FROM events_text WHERE text IS NOT NULL
                  AND id <= (SELECT last_indexed FROM events_fts_progress WHERE id = 1) ORDER BY id
                """), "the search index holds exactly the indexed events", file: file, line: line)
    }

    func testOnlyWholeFinishedJobsBeforeTheCutoffGoAndEveryKeptChainVerifies() async throws {
        try await job("J1", status: .succeeded, finishedAt: 1000)
        try await job("J2", events: 4, status: .failed, finishedAt: 2000)
        try await job("J3", events: 2, status: .cancelled, finishedAt: 3000)
        try await job("J4", status: .running)
        try await job("J5", events: 1, status: .queued)
        try await job("J6", status: .succeeded, finishedAt: 5000)
        let db = try db()
        try SearchIndex.catchUp(db)
        let heads = Dictionary(
            uniqueKeysWithValues: try db.query("SELECT job_id, head FROM job_chains").map { ($0[0].text!, $0[1].text!) })
        let eventsBefore = try count(db, "SELECT count(*) FROM events")

        // A dry run counts and removes nothing.
        let dry = try db.pruneCandidates(PruneRequest(before: 4000))
        XCTAssertEqual(dry, PruneResult(jobs: 3, events: 9))
        XCTAssertEqual(try count(db, "SELECT count(*) FROM events"), eventsBefore)
        XCTAssertEqual(try count(db, "SELECT count(*) FROM jobs"), 6)

        let removed = Locked<[String]>([])
        let first = try await writer.prune(PruneRequest(before: 4000, statuses: [.succeeded])) { jobs in
            removed.withLock { $0 += jobs.map(\.id) }
        }
        XCTAssertEqual(first.jobs, 1)
        XCTAssertEqual(first.events, 3)
        XCTAssertEqual(removed.value, ["J1"])
        let second = try await writer.prune(PruneRequest(before: 4000))
        XCTAssertEqual(second.jobs, 2)
        XCTAssertEqual(second.events, 6)
        XCTAssertNotEqual(first.pruneID, second.pruneID)

        XCTAssertEqual(try db.allJobIDs(), ["J4", "J5", "J6"], "running, queued and newer jobs stay")
        XCTAssertEqual(try count(db, "SELECT count(*) FROM events WHERE job_id IN ('J1','J2','J3')"), 0)
        XCTAssertEqual(try count(db, "SELECT count(*) FROM job_chains WHERE job_id IN ('J1','J2','J3')"), 0)
        XCTAssertEqual(try count(db, "SELECT count(*) FROM events"), eventsBefore - 9)
        try assertEverythingVerifies(db)
        XCTAssertEqual(try searchHits(db, "wordJ1"), [], "a pruned job's text is out of the index")
        XCTAssertEqual(try searchHits(db, "wordJ6"), ["J6", "J6", "J6"])

        // The record: each pruned job with the head its chain had, under its prune.
        XCTAssertEqual(
            try db.query("SELECT job_id, prune_id, status, finished_at, head, length FROM pruned_jobs ORDER BY job_id"),
            [
                [.text("J1"), .int(first.pruneID!), .text("succeeded"), .int(1000), .text(heads["J1"]!), .int(3)],
                [.text("J2"), .int(second.pruneID!), .text("failed"), .int(2000), .text(heads["J2"]!), .int(4)],
                [.text("J3"), .int(second.pruneID!), .text("cancelled"), .int(3000), .text(heads["J3"]!), .int(2)],
            ])
        XCTAssertEqual(
            try db.query("SELECT id, at, before, statuses FROM prunes ORDER BY id"),
            [
                [.int(first.pruneID!), .int(9000), .int(4000), .text("succeeded")],
                [.int(second.pruneID!), .int(9000), .int(4000), .text("succeeded,failed,cancelled")],
            ])
        XCTAssertEqual(try db.prunedJob("J2")?.head, heads["J2"])
        XCTAssertEqual(try db.pruneSummary(), PruneSummary(prunes: 2, jobs: 3, lastAt: 9000))

        // The kept jobs go on.
        try await writer.write([.append(Rows.event("J4", seq: 4)), .setStatus(jobID: "J4", status: .succeeded, reason: nil, at: 6000)])
        try await writer.write([.append(Rows.event("J5", seq: 2))])
        try assertEverythingVerifies(db)
        let third = try await writer.prune(PruneRequest(before: 4000))
        XCTAssertEqual(third.jobs, 0, "nothing more is old enough")
    }

    func testTheStoreRefusesToDeleteAnythingOutsideAPrune() async throws {
        try await job("R", status: .running)
        try await job("S", status: .succeeded, finishedAt: 10)
        let db = try db()
        for sql in [
            "DELETE FROM events WHERE job_id = 'S'", "DELETE FROM job_chains WHERE job_id = 'S'", "DELETE FROM jobs WHERE id = 'S'",
        ] {
            XCTAssertThrowsError(try db.execute(sql), sql) { error in
                XCTAssertEqual((error as? StoreError)?.primaryCode, 19, "\(error)")
            }
        }
        try db.execute("INSERT INTO prunes(id, at, before, statuses) VALUES (1, 1, 1, 'running')")
        XCTAssertThrowsError(
            try db.execute("INSERT INTO pruned_jobs(job_id, prune_id, status, finished_at, length) VALUES ('R', 1, 'succeeded', 1, 3)")
        ) { error in
            XCTAssertTrue("\(error)".contains("only a finished job can be pruned"), "\(error)")
        }
        XCTAssertThrowsError(try db.execute("DELETE FROM prunes")) { XCTAssertTrue("\($0)".contains("append-only"), "\($0)") }
        XCTAssertEqual(try db.allJobIDs(), ["R", "S"])
        XCTAssertEqual(try count(db, "SELECT count(*) FROM events"), 6)
    }

    func testJobsTheDaemonStillHoldsAreKeptAndPrunesGoInBatches() async throws {
        let ids = (0..<250).map { String(format: "B%03d", $0) }
        for id in ids { try await job(id, events: 1, status: .succeeded, finishedAt: 100) }
        let result = try await writer.prune(PruneRequest(before: 200, exclude: ["B007", "B180"]))
        XCTAssertEqual(result.jobs, 248)
        let db = try db()
        XCTAssertEqual(try db.allJobIDs(), ["B007", "B180"])
        XCTAssertEqual(try count(db, "SELECT count(*) FROM prunes"), 1, "one prune, however many transactions")
        XCTAssertEqual(try count(db, "SELECT count(*) FROM pruned_jobs"), 248)
        try assertEverythingVerifies(db)
    }

    func testAfterTheNewestEventsArePrunedNewEventsAreStillIndexed() async throws {
        // SQLite reuses the ids above the highest row left: the index must not think them indexed.
        try await job("OLD1", status: .succeeded, finishedAt: 10)
        try await job("OLD2", status: .failed, finishedAt: 20)
        let db = try db()
        try SearchIndex.catchUp(db)
        let pruned = try await writer.prune(PruneRequest(before: 100))
        XCTAssertEqual(pruned.jobs, 2)
        try await job("NEW", status: .succeeded, finishedAt: 200)
        XCTAssertEqual(try count(db, "SELECT min(id) FROM events"), 1, "the ids came back")
        XCTAssertEqual(try searchHits(db, "wordNEW"), ["NEW", "NEW", "NEW"])
        XCTAssertEqual(try searchHits(db, "wordOLD1"), [], "no pruned text is found under a reused id")
        try assertEverythingVerifies(db)
        // And a later prune takes those events out of the index again without harm.
        XCTAssertEqual(try db.prune(PruneRequest(before: 300), now: 1).jobs, 1)
        try assertEverythingVerifies(db)
        XCTAssertEqual(try searchHits(db, "wordNEW"), [])
    }
}
