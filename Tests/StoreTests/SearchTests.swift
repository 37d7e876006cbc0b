import Foundation
import Synchronization
import XCTest

@testable import Store

final class SearchTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var db: Database!
    private var nextSeq: [String: Int] = [:]

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
        db = try Database(path: directory.databasePath)
        try Migrations.migrate(db, now: 1)
        for job in ["J1", "J2"] {
            try db.execute(
                "INSERT INTO jobs(id, plan_name, plan, goal, status, created_at) VALUES ('\(job)', 'p', '{}', 'g', 'running', 1)")
        }
    }

    override func tearDown() {
        db = nil
        directory.remove()
    }

    /// Appends an event the way the writer does (no index work on insert).
    @discardableResult
    private func append(
        _ job: String, _ kind: String, role: String? = nil, step: Int? = nil, attempt: Int? = nil, call: String? = nil,
        at: Int64 = 1000, _ payload: JSON
    ) throws -> Int {
        let seq = (nextSeq[job] ?? 0) + 1
        nextSeq[job] = seq
        let stmt = try db.prepare(
            "INSERT INTO events(job_id, seq, at, kind, role, step, attempt, call_id, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
        try stmt.run([
            .text(job), .int(Int64(seq)), .int(at), .text(kind), role.map(SQLValue.text) ?? .null,
            step.map { .int(Int64($0)) } ?? .null, attempt.map { .int(Int64($0)) } ?? .null, call.map(SQLValue.text) ?? .null,
            .text(payload.encoded),
        ])
        return seq
    }

    private func search(_ text: String, _ change: (inout SearchQuery) -> Void = { _ in }) throws -> [SearchHit] {
        var query = SearchQuery(text: text)
        change(&query)
        return try SearchIndex.search(db, query)
    }

    private func request(_ content: String) -> JSON {
        ["agent": "actor/J1", "reask": 0, "request": ["model": "script", "messages": [["role": "user", "content": .string(content)]]]]
    }

    func testNothingIsIndexedOnInsertAndASearchCatchesUpFirst() throws {
        try append("J1", "call.started", role: "actor", step: 0, attempt: 0, call: "c1", request("Write the release notes"))
        XCTAssertEqual(try SearchIndex.lastIndexed(db), 0, "the insert itself indexes nothing")
        XCTAssertEqual(try SearchIndex.lag(db), 1)

        let hits = try search("release")
        XCTAssertEqual(hits.count, 1)
        XCTAssertEqual(hits.first?.jobID, "J1")
        XCTAssertEqual(hits.first?.seq, 1)
        XCTAssertEqual(hits.first?.kind, "call.started")
        XCTAssertEqual(hits.first?.role, "actor")
        XCTAssertEqual(hits.first?.step, 0)
        XCTAssertEqual(hits.first?.attempt, 0)
        XCTAssertEqual(hits.first?.callID, "c1")
        XCTAssertEqual(hits.first?.snippet.contains("**release**"), true, hits.first?.snippet ?? "")
        XCTAssertEqual(try SearchIndex.lag(db), 0)

        // An event committed after that search is found by the next one.
        try append("J1", "call.completed", role: "actor", step: 0, attempt: 0, call: "c1", ["reply": "the release notes, drafted"])
        XCTAssertEqual(try search("drafted").map(\.seq), [2])
        XCTAssertEqual(try search("release").map(\.seq), [2, 1], "newest first")
    }

    func testOnlyStringValuesAreIndexedCaseAndAccentInsensitively() throws {
        try append(
            "J1", "call.completed", role: "critic", ["verdict": ["verdict": "fail", "score": 0.35, "feedback": "Café crème missing"]])
        XCTAssertEqual(try search("cafe").count, 1)
        XCTAssertEqual(try search("CREME").count, 1)
        XCTAssertEqual(try search("verdict").count, 0, "keys are not text")
        XCTAssertEqual(try search("35").count, 0, "numbers are not text")
        XCTAssertEqual(try search("fail").count, 1)
    }

    func testFiltersComeFromTheEventsTable() throws {
        try append("J1", "call.started", role: "actor", step: 0, attempt: 0, call: "c1", at: 1000, request("alpha task"))
        try append("J1", "call.completed", role: "critic", step: 0, attempt: 0, call: "c2", at: 2000, ["reply": "alpha judged"])
        try append("J2", "call.completed", role: "actor", step: 1, attempt: 1, call: "c5", at: 3000, ["reply": "alpha done"])
        try append("J2", "tool.completed", role: "actor", call: "c5.0", at: 4000, ["tool": "run_command", "result": "alpha ok"])

        XCTAssertEqual(try search("alpha").count, 4)
        XCTAssertEqual(try search("alpha") { $0.jobID = "J2" }.map(\.seq), [2, 1])
        XCTAssertEqual(try search("alpha") { $0.role = "critic" }.map(\.jobID), ["J1"])
        XCTAssertEqual(try search("alpha") { $0.kind = "call.completed" }.map(\.jobID), ["J2", "J1"])
        XCTAssertEqual(try search("alpha") { $0.since = 3000 }.map(\.kind), ["tool.completed", "call.completed"])
        XCTAssertEqual(try search("alpha") { $0.limit = 1 }.map(\.kind), ["tool.completed"])
        XCTAssertEqual(try search("run_command").first?.callID, "c5.0")
        XCTAssertEqual(
            try search("alpha") {
                $0.jobID = "J2"
                $0.role = "actor"
                $0.kind = "call.completed"
            }.count, 1)
        XCTAssertEqual(try search("alpha") { $0.order = .rank }.count, 4)
    }

    func testQuerySyntax() throws {
        try append("J1", "call.completed", role: "actor", ["reply": "the quick brown fox jumps"])
        try append("J1", "call.completed", role: "actor", ["reply": "a quick grey wolf"])
        XCTAssertEqual(try search("\"quick brown\"").map(\.seq), [1])
        XCTAssertEqual(try search("fox OR wolf").count, 2)
        XCTAssertEqual(try search("quick NOT fox").map(\.seq), [2])
        XCTAssertEqual(try search("jump*").map(\.seq), [1])
        XCTAssertEqual(try search("quick grey").map(\.seq), [2], "all words must occur")
    }

    func testBadQuerySyntaxIsAClearError() throws {
        try append("J1", "call.completed", ["reply": "x"])
        for bad in ["\"unterminated", "AND", "a + (", "step-1"] {
            XCTAssertThrowsError(try search(bad), bad) { error in
                guard case let .badQuery(message)? = error as? SearchError else {
                    return XCTFail("\(bad): expected badQuery, got \(error)")
                }
                XCTAssertTrue(message.hasPrefix("bad search query"), message)
                XCTAssertFalse(message.contains("\n"), message)
            }
        }
        XCTAssertThrowsError(try search("   "))
    }

    func testCatchUpWorksInBatchesAndTwoIndexersNeverDoubleIndex() throws {
        for i in 0..<25 { try append("J1", "call.completed", ["reply": .string("word\(i) common")]) }
        XCTAssertEqual(try SearchIndex.indexBatch(db, batch: 10), 10)
        XCTAssertEqual(try SearchIndex.lastIndexed(db), 10)
        let other = try Database(path: directory.databasePath)
        XCTAssertEqual(try SearchIndex.catchUp(other, batch: 10), 15)
        XCTAssertEqual(try SearchIndex.catchUp(db, batch: 10), 0)
        XCTAssertEqual(try SearchIndex.searchIndexed(db, SearchQuery(text: "common", limit: 100)).count, 25)
        XCTAssertEqual(try SearchIndex.searchIndexed(db, SearchQuery(text: "word24")).map(\.seq), [25])
        // The index agrees with its content (FTS5's own check).
        try db.execute("INSERT INTO events_fts(events_fts) VALUES ('integrity-check')")
    }

    func testBackgroundIndexerIndexesOnlyWhileIdle() throws {
        for i in 0..<5 { try append("J1", "call.completed", ["reply": .string("idle\(i)")]) }
        let idle = Locked(false)
        let asked = Locked(0)
        let indexer = try SearchIndexer(path: directory.databasePath, intervalMilliseconds: 20, maxDeferralSeconds: 3600) {
            asked.withLock { $0 += 1 }
            return idle.value
        }
        indexer.start()
        defer { indexer.close() }
        // The indexer asked three times and was told "busy" each time.
        XCTAssertTrue(try waitUntil(timeout: 30) { asked.value >= 3 }, "the indexer asks whether the store is idle")
        XCTAssertEqual(try SearchIndex.lastIndexed(db), 0, "busy: nothing indexed")
        idle.withLock { $0 = true }
        XCTAssertTrue(try waitUntil(timeout: 30) { try SearchIndex.lag(db) == 0 }, "idle: everything indexed")
        XCTAssertEqual(indexer.indexed, 5)
        XCTAssertNil(indexer.lastError)
    }

    func testSinceParsing() {
        let now: Int64 = 1_800_000_000_000
        XCTAssertEqual(SearchQuery.parseSince("90s", now: now), now - 90_000)
        XCTAssertEqual(SearchQuery.parseSince("15m", now: now), now - 900_000)
        XCTAssertEqual(SearchQuery.parseSince("2h", now: now), now - 7_200_000)
        XCTAssertEqual(SearchQuery.parseSince("7d", now: now), now - 604_800_000)
        XCTAssertEqual(SearchQuery.parseSince("500ms", now: now), now - 500)
        XCTAssertEqual(SearchQuery.parseSince("1970-01-02", now: now), 86_400_000)
        XCTAssertEqual(SearchQuery.parseSince("2026-11-29T10:30:00Z", now: now), 1_795_948_200_000)
        XCTAssertEqual(SearchQuery.parseSince("2026-11-29 10:30", now: now), 1_795_948_200_000)
        XCTAssertEqual(SearchQuery.parseSince("1795948200000", now: now), 1_795_948_200_000)
        for bad in ["", "yesterday", "5y", "2026-13-01", "2026-11-29T25:00", "-5m"] {
            XCTAssertNil(SearchQuery.parseSince(bad, now: now), bad)
        }
    }
}
