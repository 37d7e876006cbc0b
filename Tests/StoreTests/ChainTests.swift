import Crypto
import Foundation
import XCTest

@testable import Store

final class ChainTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
    }

    override func tearDown() {
        directory.remove()
    }

    private func writer() throws -> StoreWriter {
        let writer = try StoreWriter(path: directory.databasePath, clock: ManualClock())
        writer.start()
        return writer
    }

    private func reader() throws -> Database {
        try Database(path: directory.databasePath, readOnly: true)
    }

    /// Writes job `id` and events `seqs` (one request each).
    private func write(_ writer: StoreWriter, job id: String? = nil, events: [EventRecord]) async throws {
        if let id { try await writer.write([.insertJob(Rows.job(id))]) }
        for event in events { try await writer.write([.append(event)]) }
    }

    private func head(_ db: Database, _ job: String) throws -> (String?, Int64?) {
        guard let row = try db.query("SELECT head, length FROM job_chains WHERE job_id = ?", [.text(job)]).first else { return (nil, nil) }
        return (row[0].text, row[1].int)
    }

    // MARK: The hash

    func testFirstHashIsSHA256OfZerosAndTheCanonicalFields() async throws {
        let writer = try writer()
        let event = EventRecord(
            jobID: "J1", seq: 1, at: 1_700_000_000_123, kind: "call.started", role: "critic", step: 0, attempt: nil,
            callID: "c1", payload: ["text": "héllo\n", "n": 2])
        try await writer.write([.insertJob(Rows.job("J1")), .append(event)])
        writer.close()

        let message = "J1\u{1F}1\u{1F}1700000000123\u{1F}call.started\u{1F}critic\u{1F}0\u{1F}\u{1F}c1\u{1F}{\"text\":\"héllo\\n\",\"n\":2}"
        let expected = SHA256.hash(data: [UInt8](repeating: 0, count: 32) + Array(message.utf8))
            .map { String(format: "%02x", $0) }.joined()
        let db = try reader()
        XCTAssertEqual(try db.query("SELECT hash FROM events WHERE job_id = 'J1' AND seq = 1"), [[.text(expected)]])
        let (head, length) = try head(db, "J1")
        XCTAssertEqual(head, expected)
        XCTAssertEqual(length, 1)
    }

    func testEachHashChainsThePreviousOne() async throws {
        let writer = try writer()
        try await write(writer, job: "J1", events: (1...3).map { Rows.event("J1", seq: $0) })
        writer.close()
        let db = try reader()
        let rows = try db.query("SELECT \(Chain.columns), hash FROM events WHERE job_id = 'J1' ORDER BY seq")
        var previous = [UInt8](repeating: 0, count: 32)
        for row in rows {
            let message = row[0..<9].map { value -> String in
                switch value {
                case .null: return ""
                case let .int(v): return String(v)
                case let .text(t): return t
                case let .double(d): return String(d)
                }
            }.joined(separator: "\u{1F}")
            let digest = Array(SHA256.hash(data: previous + Array(message.utf8)))
            XCTAssertEqual(row[9].text, digest.map { String(format: "%02x", $0) }.joined())
            previous = digest
        }
        XCTAssertEqual(rows.count, 3)
    }

    // MARK: The writer's cache

    func testChainContinuesAcrossCommitsJobsAndARestart() async throws {
        var writer = try writer()
        try await write(writer, job: "J1", events: [Rows.event("J1", seq: 1)])
        try await write(writer, job: "J2", events: [Rows.event("J2", seq: 1)])
        // Several events of two jobs in one request, and a status change.
        try await writer.write([
            .append(Rows.event("J1", seq: 2)), .append(Rows.event("J2", seq: 2)), .append(Rows.event("J1", seq: 3)),
            .setStatus(jobID: "J2", status: .succeeded, reason: nil, at: 5),
        ])
        // A finished job's chain is read back from its row.
        try await write(writer, events: [Rows.event("J2", seq: 3)])
        writer.close()
        // A new writer knows nothing and reads the heads from the rows.
        writer = try self.writer()
        try await write(writer, events: [Rows.event("J1", seq: 4), Rows.event("J1", seq: 5)])
        writer.close()

        let db = try reader()
        let one = try XCTUnwrap(try db.verifyChain(jobID: "J1"))
        XCTAssertNil(one.problem)
        XCTAssertEqual(one.events, 5)
        XCTAssertEqual(try head(db, "J1").0, one.head?.hex)
        XCTAssertEqual(try head(db, "J1").1, 5)
        let two = try XCTUnwrap(try db.verifyChain(jobID: "J2"))
        XCTAssertNil(two.problem)
        XCTAssertEqual(two.events, 3)
        XCTAssertNil(try db.verifyChain(jobID: "nope"))
    }

    func testAFailedBatchDoesNotLeaveTheCacheAhead() async throws {
        var writer = try writer()
        try await write(writer, job: "J1", events: [Rows.event("J1", seq: 1)])
        writer.close()
        // Queued before the thread starts, so both requests share one transaction; the second fails,
        // the batch is rolled back and the first committed alone.
        writer = try StoreWriter(path: directory.databasePath, clock: ManualClock())
        let results = Locked<[String: StoreError?]>([:])
        let done = DispatchGroup()
        done.enter()
        done.enter()
        writer.submit([.append(Rows.event("J1", seq: 2))]) { error in
            results.withLock { $0["good"] = error }
            done.leave()
        }
        writer.submit([.append(Rows.event("J1", seq: 1, kind: "job.state"))]) { error in
            results.withLock { $0["bad"] = error }
            done.leave()
        }
        writer.start()
        done.wait()
        XCTAssertNil(results.value["good"] ?? nil)
        XCTAssertNotNil(results.value["bad"] ?? nil)
        try await write(writer, events: [Rows.event("J1", seq: 3)])
        writer.close()
        let report = try XCTUnwrap(try reader().verifyChain(jobID: "J1"))
        XCTAssertNil(report.problem, "\(report)")
        XCTAssertEqual(report.events, 3)
    }

    // MARK: Verification

    /// The kinds of J1's events in `tampered`, by seq.
    private static let kinds = ["job.state", "call.started", "step.exhausted", "call.completed", "tool.started", "tool.completed"]

    /// A database with job J1 (6 events) and J2 (2 events), copied for each tampering.
    private func tampered(_ sql: String) async throws -> Database {
        let original = directory.path + "/original.db"
        if !FileManager.default.fileExists(atPath: original) {
            let writer = try StoreWriter(path: original, clock: ManualClock())
            writer.start()
            try await write(
                writer, job: "J1",
                events: (1...6).map {
                    Rows.event("J1", seq: $0, kind: Self.kinds[$0 - 1], callID: $0 == 2 ? "c1" : nil, payload: ["n": .int($0)])
                })
            try await write(writer, job: "J2", events: [Rows.event("J2", seq: 1), Rows.event("J2", seq: 2)])
            writer.close()
        }
        let copy = directory.path + "/copy-\(UUID().uuidString).db"
        try FileManager.default.copyItem(atPath: original, toPath: copy)
        let db = try Database(path: copy)
        try db.execute("DROP TRIGGER events_append_only_update; DROP TRIGGER events_append_only_delete;")
        try db.execute(sql)
        return db
    }

    private func problem(_ sql: String, file: StaticString = #filePath, line: UInt = #line) async throws -> ChainProblem? {
        let db = try await tampered(sql)
        XCTAssertNil(try db.verifyChain(jobID: "J2")?.problem, "the other job still verifies", file: file, line: line)
        return try XCTUnwrap(try db.verifyChain(jobID: "J1"), file: file, line: line).problem
    }

    func testUntouchedChainsVerify() async throws {
        let db = try await tampered("SELECT 1")
        XCTAssertEqual(try db.allJobIDs(), ["J1", "J2"])
        for id in ["J1", "J2"] { XCTAssertNil(try db.verifyChain(jobID: id)?.problem) }
        XCTAssertTrue(try db.hasHashChain())
    }

    func testAnEditedPayloadOrFieldIsNamed() async throws {
        let payload = try await problem(#"UPDATE events SET payload = '{"n":33}' WHERE job_id = 'J1' AND seq = 3"#)
        XCTAssertEqual(payload?.kind, .edited)
        XCTAssertEqual(payload?.seq, 3)
        XCTAssertEqual(payload?.eventKind, "step.exhausted")
        XCTAssertEqual(payload?.message, "payload or fields edited")
        let at = try await problem("UPDATE events SET at = at + 1 WHERE job_id = 'J1' AND seq = 4")
        XCTAssertEqual(at?.kind, .edited)
        XCTAssertEqual(at?.seq, 4)
        let kind = try await problem("UPDATE events SET kind = 'k5x' WHERE job_id = 'J1' AND seq = 5")
        XCTAssertEqual(kind?.seq, 5)
        let hash = try await problem("UPDATE events SET hash = upper(hash) WHERE job_id = 'J1' AND seq = 1")
        XCTAssertEqual(hash?.kind, .edited)
        XCTAssertEqual(hash?.seq, 1)
        let none = try await problem("UPDATE events SET hash = NULL WHERE job_id = 'J1' AND seq = 2")
        XCTAssertEqual(none?.kind, .noHash)
        XCTAssertEqual(none?.seq, 2)
    }

    func testADeletedEventIsNamed() async throws {
        let deleted = try await problem("DELETE FROM events WHERE job_id = 'J1' AND seq = 4")
        XCTAssertEqual(deleted?.kind, .missing)
        XCTAssertEqual(deleted?.seq, 4)
        XCTAssertEqual(deleted?.message.hasPrefix("event seq 4 missing (deleted)"), true, deleted?.message ?? "")
        let first = try await problem("DELETE FROM events WHERE job_id = 'J1' AND seq = 1")
        XCTAssertEqual(first?.seq, 1)
        let all = try await problem("DELETE FROM events WHERE job_id = 'J1'")
        XCTAssertEqual(all?.kind, .missing)
        XCTAssertEqual(all?.seq, 1)
    }

    func testSwappedEventsAreOutOfOrder() async throws {
        let swapped = try await problem(
            """
            UPDATE events SET seq = 100 WHERE job_id = 'J1' AND seq = 2;
            UPDATE events SET seq = 2 WHERE job_id = 'J1' AND seq = 3;
            UPDATE events SET seq = 3 WHERE job_id = 'J1' AND seq = 100;
            """)
        XCTAssertEqual(swapped?.kind, .outOfOrder)
        XCTAssertEqual(swapped?.seq, 2)
        XCTAssertTrue(swapped?.message.hasPrefix("out of order") ?? false)
    }

    func testTheHeadMustMatchTheLastEvent() async throws {
        let edited = try await problem(
            "UPDATE job_chains SET head = (SELECT hash FROM events WHERE job_id = 'J1' AND seq = 5) WHERE job_id = 'J1'")
        XCTAssertEqual(edited?.kind, .head)
        XCTAssertEqual(edited?.seq, 6)
        XCTAssertEqual(edited?.message, "chain head does not match the last event (edited or events removed from the end)")
        let truncated = try await problem("DELETE FROM events WHERE job_id = 'J1' AND seq = 6")
        XCTAssertEqual(truncated?.kind, .head)
        XCTAssertEqual(truncated?.seq, 5)
        // A head moved back with the log cut: the length still tells.
        let consistent = try await problem(
            """
            DELETE FROM events WHERE job_id = 'J1' AND seq = 6;
            UPDATE job_chains SET head = (SELECT hash FROM events WHERE job_id = 'J1' AND seq = 5) WHERE job_id = 'J1';
            """)
        XCTAssertEqual(consistent?.kind, .head)
        XCTAssertEqual(consistent?.seq, 5)
    }

    // MARK: Migration

    func testMigrationHashesTheEventsOfAnOlderDatabase() async throws {
        let db = try Database(path: directory.databasePath)
        try Migrations.migrate(db, now: 1, upTo: 1)
        XCTAssertFalse(try db.hasHashChain())
        for job in ["A", "B"] {
            try db.execute(
                "INSERT INTO jobs(id, plan_name, plan, goal, status, created_at) VALUES ('\(job)', 'p', '{}', 'g', 'running', 1)")
            for seq in 1...3 {
                try db.execute(
                    """
                    INSERT INTO events(job_id, seq, at, kind, role, step, attempt, call_id, payload)
                    VALUES ('\(job)', \(seq), \(100 + seq), 'call.started', 'actor', 0, \(seq == 2 ? "1" : "NULL"), 'c\(seq)', '{"s":"\(job)\(seq)"}')
                    """)
            }
        }
        try db.execute("INSERT INTO jobs(id, plan_name, plan, goal, status, created_at) VALUES ('C', 'p', '{}', 'g', 'queued', 1)")
        try Migrations.migrate(db, now: 2)
        XCTAssertTrue(try db.hasHashChain())
        for job in ["A", "B", "C"] {
            let report = try XCTUnwrap(try db.verifyChain(jobID: job))
            XCTAssertNil(report.problem, "\(report)")
        }
        XCTAssertEqual(try head(db, "A").1, 3)
        XCTAssertEqual(try head(db, "C").0, nil)
        // The update trigger is back.
        XCTAssertThrowsError(try db.execute("UPDATE events SET hash = NULL")) { error in
            XCTAssertTrue("\(error)".contains("append-only"), "\(error)")
        }
        // The writer goes on from the migrated heads.
        let writer = try writer()
        try await write(writer, events: [Rows.event("A", seq: 4)])
        try await write(writer, events: [Rows.event("C", seq: 1)])
        writer.close()
        XCTAssertNil(try reader().verifyChain(jobID: "A")?.problem)
        XCTAssertEqual(try reader().verifyChain(jobID: "A")?.events, 4)
        XCTAssertNil(try reader().verifyChain(jobID: "C")?.problem)
    }
}
