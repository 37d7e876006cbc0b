import Foundation
import Store
import XCTest

/// A history larger than the 64 MiB of output a client may leave unread reaches a client that reads
/// it, through `job.watch` from 0 and through `job.transcript` with its default limit; a client that
/// does not read is told why in a last line before it is cut off.
final class LargeHistoryTests: EndToEndTestCase {
    private let jobID = "01M0000000000000AA"
    /// 72 events of 1 MiB each: more than the 64 MiB limit on unread output.
    private let eventCount = 72
    private let eventBytes = 1 << 20

    /// Writes a finished job with a large history straight into a new database (the daemon serves
    /// records it did not write the same way); the search index is marked up to date so the daemon
    /// does not spend the test indexing it.
    private func writeLargeJob(goalBytes: Int = 16, events: Int? = nil) throws {
        let db = try Database(path: harness.dbPath)
        try Migrations.migrate(db, now: 0)
        try db.execute("BEGIN")
        let goal = String(repeating: "g", count: goalBytes)
        try db.prepare(
            "INSERT INTO jobs(id, plan_name, plan, goal, status, created_at, started_at, finished_at) VALUES (?, 'big', '{}', ?, 'succeeded', 1, 1, 2)"
        ).run([.text(jobID), .text(goal)])
        let insert = try db.prepare(
            "INSERT INTO events(job_id, seq, at, kind, role, step, attempt, call_id, payload) VALUES (?, ?, 1, 'call.completed', 'actor', 0, 0, ?, ?)"
        )
        let reply = String(repeating: "x", count: eventBytes)
        for seq in 1...(events ?? eventCount) {
            let payload = JSON.object([("reply", .string(reply)), ("duration_ms", 1)]).encoded
            try insert.run([.text(jobID), .int(Int64(seq)), .text("c\(seq)"), .text(payload)])
        }
        try db.execute("UPDATE events_fts_progress SET last_indexed = (SELECT max(id) FROM events)")
        try db.execute("COMMIT")
    }

    /// The `seq` of a `job.event` line, read from its start (the payload is not parsed: it is large).
    private func seq(ofEvent line: [UInt8]) -> Int? {
        let head = String(decoding: line.prefix(200), as: UTF8.self)
        guard head.hasPrefix(#"{"jsonrpc":"2.0","method":"job.event""#), let at = head.range(of: #""seq":"#) else { return nil }
        return Int(head[at.upperBound...].prefix { $0.isNumber })
    }

    func testAReadingClientGetsAHistoryLargerThanTheUnreadLimit() throws {
        try writeLargeJob()
        try harness.start()
        let connection = try harness.connect()

        try connection.send(line: #"{"jsonrpc":"2.0","id":1,"method":"job.watch","params":{"id":"\#(jobID)","since":0}}"#)
        var seqs: [Int] = []
        var total = 0
        while true {
            let line = try connection.readLine(timeout: 60)
            total += line.count
            if let seq = seq(ofEvent: line) {
                seqs.append(seq)
                continue
            }
            let reply = try JSON.parse(line)
            XCTAssertEqual(reply["result"]?["status"]?.stringValue, "succeeded", reply.encoded)
            break
        }
        XCTAssertEqual(seqs, Array(1...eventCount), "every event, once, in order")
        XCTAssertGreaterThan(total, 64 << 20, "more than the unread limit went through one connection")

        try connection.send(line: #"{"jsonrpc":"2.0","id":2,"method":"job.transcript","params":{"id":"\#(jobID)"}}"#)
        let line = try connection.readLine(timeout: 120)
        XCTAssertGreaterThan(line.count, 64 << 20, "one reply larger than the unread limit")
        let page = try JSON.parse(line)
        XCTAssertEqual(page["id"]?.intValue, 2)
        let events = try XCTUnwrap(page["result"]?["events"]?.arrayValue)
        XCTAssertEqual(events.map { $0["seq"]?.intValue ?? -1 }, Array(1...eventCount))
        XCTAssertEqual(events.last?["payload"]?["reply"]?.stringValue?.utf8.count, eventBytes)
        XCTAssertNil(page["result"]?["next_after_seq"], "a page short of the limit is the last")

        let status = try harness.rpc("daemon.status")
        XCTAssertEqual(status["connections"]?["cut_off"]?.intValue, 0, status.encoded)
    }

    /// A client that sends requests and reads nothing: once more than 64 MiB of replies wait, the
    /// daemon queues no more, writes one error line after what it queued, and closes the connection.
    func testAClientThatDoesNotReadGetsAnErrorLineBeforeItIsClosed() throws {
        // A 1 MiB goal: every job.get reply is over 1 MiB (one event: the replies are cheap to make).
        try writeLargeJob(goalBytes: eventBytes, events: 1)
        try harness.start()
        let connection = try harness.connect()
        let requests = 80
        for i in 1...requests {
            try connection.send(line: #"{"jsonrpc":"2.0","id":\#(i),"method":"job.get","params":{"id":"\#(jobID)"}}"#)
        }
        XCTAssertTrue(
            try waitUntil(timeout: 60) { try harness.rpc("daemon.status")["connections"]?["cut_off"]?.intValue == 1 },
            "the daemon cut the client off")
        var replies = 0
        var last: JSON = .null
        while true {
            let line: [UInt8]
            do {
                line = try connection.readLine(timeout: 60)
            } catch {
                break
            }
            if line.starts(with: Array(#"{"jsonrpc":"2.0","id":"#.utf8)), line.count > eventBytes {
                replies += 1
                continue
            }
            last = try JSON.parse(line)
        }
        XCTAssertGreaterThan(replies, 0, "what was queued before the limit arrives whole")
        XCTAssertLessThan(replies, requests, "not every reply: the client fell behind")
        XCTAssertEqual(last["error"]?["code"]?.intValue, -32012, last.encoded)
        XCTAssertTrue(last["id"]?.isNull == true, last.encoded)
        XCTAssertTrue(last["error"]?["message"]?.stringValue?.contains("67108864 bytes") == true, last.encoded)
        // The daemon goes on serving others.
        XCTAssertNotNil(try harness.rpc("daemon.status")["pid"]?.intValue)
    }
}
