import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The limits that keep one client from stalling the others or filling the daemon's memory: queued
/// jobs per client and in total, requests in flight per connection, and output a client never reads.
final class LimitTests: EndToEndTestCase {
    private var w1: String { Locations.shippedPlans + "/w1.yaml" }

    /// Starts a job that runs until the test creates `gate` in the harness directory (so every other
    /// job stays queued with `--max-running 1`); returns its id.
    private func startGatedJob() throws -> String {
        let id = try submit(try harness.preparePlan("live-watch.yaml"))
        try harness.waitForEvent(id, "the gated actor call") {
            $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor"
        }
        return id
    }

    private func openGate() {
        _ = FileManager.default.createFile(atPath: harness.dir + "/gate", contents: nil)
    }

    /// Sends `count` submissions of the W1 plan at once on `connection` (ids from `firstID`) and
    /// returns their replies by id.
    private func flood(_ connection: WireConnection, count: Int, firstID: Int = 1) throws -> [Int: JSON] {
        var frames: [UInt8] = []
        for i in firstID..<(firstID + count) {
            let request: JSON = .object([
                ("jsonrpc", "2.0"), ("id", .int(i)), ("method", "job.submit"),
                ("params", ["plan_path": .string(w1), "goal": .string("flood \(i)")]),
            ])
            frames += Array(request.encoded.utf8) + [0x0A]
        }
        try connection.send(raw: frames)
        var replies: [Int: JSON] = [:]
        while replies.count < count {
            let reply = try connection.readMessage(timeout: 20)
            replies[try XCTUnwrap(reply["id"]?.intValue, reply.encoded)] = reply
        }
        return replies
    }

    /// One user floods the daemon with submissions: it gets its cap's worth queued and a clear
    /// `-32009` for the rest, while a second user still has jobs admitted and the first user's other
    /// connections are still served (the per-client cap is per user, so they share it). The total cap
    /// then stops the second user too.
    func testAFloodFromOneClientHitsItsCapWhileAnotherUserIsServed() throws {
        try OtherUser.ensure()
        try harness.start(extraArguments: [
            "--max-running", "1", "--max-queued-jobs-per-client", "5", "--max-queued-jobs", "7", "--allow-group",
            try OtherUser.groupName(),
        ])
        OtherUser.openTheWay(harness)
        let running = try startGatedJob()

        let replies = try flood(try harness.connect(), count: 50)
        let admitted = replies.values.filter { $0["result"] != nil }
        let refused = replies.values.filter { $0["error"]?["code"]?.intValue == -32009 }
        XCTAssertEqual(admitted.count, 5, "the client's cap")
        XCTAssertEqual(
            refused.count, 45,
            "every other submission is refused: \(replies.values.filter { $0["result"] == nil && $0["error"]?["code"]?.intValue != -32009 }.map(\.encoded))"
        )
        let error = try XCTUnwrap(refused.first?["error"])
        XCTAssertEqual(
            error["message"]?.stringValue,
            "too many queued jobs: client uid 0 has 5 jobs queued, the limit is 5 (max_queued_jobs_per_client); try again when some have started"
        )
        XCTAssertEqual(error["data"]?["uid"]?.intValue, 0)

        // The same user on another connection: served, but its submissions count against the same cap.
        let second = try harness.connect()
        XCTAssertEqual(try second.call("daemon.status")["queued"]?.intValue, 5)
        XCTAssertEqual(try second.call("job.get", ["id": .string(running)])["status"]?.stringValue, "running")
        XCTAssertEqual(try second.request("job.submit", ["plan_path": .string(w1)])["error"]?["code"]?.intValue, -32009)

        // Another user is admitted until the total cap (7) is reached.
        for _ in 0..<2 {
            let other = try OtherUser.run(harness, ["submit", w1, "--json", "--socket", harness.socketPath])
            XCTAssertEqual(other.status, 0, other.output)
            XCTAssertTrue(other.output.contains("\"status\":\"queued\""), other.output)
        }
        let third = try OtherUser.run(harness, ["submit", w1, "--json", "--socket", harness.socketPath])
        XCTAssertEqual(third.status, 1, third.output)
        XCTAssertTrue(third.output.contains("7 jobs are queued, the limit is 7 (max_queued_jobs)"), third.output)

        // Once the queue drains, the flooding client is admitted again.
        openGate()
        XCTAssertEqual(try harness.waitForJob(running)["status"]?.stringValue, "succeeded")
        for reply in admitted {
            let id = try XCTUnwrap(reply["result"]?["id"]?.stringValue)
            XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        }
        XCTAssertNil(try second.request("job.submit", ["plan_path": .string(w1)])["error"])
    }

    /// A connection with more requests in flight than its limit is not read until one finishes: a
    /// request pipelined behind four blocking `job.wait`s is only answered after they are.
    func testAConnectionBeyondItsRequestsInFlightIsNotReadUntilOneFinishes() throws {
        try harness.start(extraArguments: ["--max-running", "1", "--max-requests-in-flight", "4"])
        let running = try startGatedJob()
        let connection = try harness.connect()
        var frames: [UInt8] = []
        for i in 1...4 {
            let wait: JSON = .object([("jsonrpc", "2.0"), ("id", .int(i)), ("method", "job.wait"), ("params", ["id": .string(running)])])
            frames += Array(wait.encoded.utf8) + [0x0A]
        }
        frames += Array(#"{"jsonrpc":"2.0","id":5,"method":"daemon.status"}"#.utf8) + [0x0A]
        try connection.send(raw: frames)
        // Other connections are served meanwhile, and see the paused one.
        XCTAssertTrue(
            try waitUntil(timeout: 10) { try harness.rpc("daemon.status")["connections"]?["paused"]?.intValue == 1 },
            "the daemon reports the connection as paused")
        openGate()
        var order: [Int] = []
        while order.count < 5 {
            order.append(try XCTUnwrap(try connection.readMessage(timeout: 20)["id"]?.intValue))
        }
        XCTAssertEqual(Set(order.prefix(4)), [1, 2, 3, 4], "the status request waited for the waits: \(order)")
        XCTAssertEqual(order.last, 5)
    }

    /// A client that sends requests and never reads their replies is cut off once 64 MiB of output
    /// waits for it; the daemon keeps serving everyone else.
    /// The 64 MiB of replies a connection may leave unread, from both sides: with one request in
    /// flight per connection, each reply is queued before the next request is read, so a job
    /// submitted after N `job.get` requests exists only once N replies were queued. Under the cap
    /// (60 MiB unread) the connection stays; past it (68 MiB) the daemon cuts it off, and what it
    /// had queued ends with the `-32012` line. (A `job.transcript` reply would not do: it is written
    /// only as fast as the client reads.)
    func testAClientThatNeverReadsIsDisconnectedAtTheOutputCap() throws {
        // A job whose object is large: a goal of 1.1 MB (in a request over the default frame limit).
        try harness.start(extraArguments: ["--max-requests-in-flight", "1", "--max-frame-bytes", "2000000"])
        let goal = String(repeating: "g", count: 1_100_000)
        let job = try harness.connect().call("job.submit", ["plan_path": .string(w1), "goal": .string(goal)])
        let id = try XCTUnwrap(job["id"]?.stringValue)
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")

        let request = #"{"jsonrpc":"2.0","id":1,"method":"job.get","params":{"id":"\#(id)"}}"# + "\n"
        let reply = try harness.connect().request("job.get", ["id": .string(id)])
        let replyBytes = reply.encoded.utf8.count + 1
        XCTAssertGreaterThan(replyBytes, 1_000_000, "each reply is large")
        let cap = 64 << 20
        let below = (cap - (4 << 20)) / replyBytes
        let above = (cap + (4 << 20)) / replyBytes + 1

        let greedy = try harness.connect()
        /// Sends `count` `job.get` requests, then a submission whose job appears once they are answered.
        func queue(_ count: Int, then marker: String) throws {
            let submit: JSON = .object([
                ("jsonrpc", "2.0"), ("id", 2), ("method", "job.submit"),
                ("params", ["plan_path": .string(w1), "goal": .string(marker)]),
            ])
            try greedy.send(raw: Array(String(repeating: request, count: count).utf8) + Array(submit.encoded.utf8) + [0x0A])
        }
        func submitted(_ marker: String) throws -> Bool {
            try harness.sqlite("SELECT count(*) FROM jobs WHERE goal = '\(marker)'").trimmingCharacters(in: .whitespacesAndNewlines) == "1"
        }
        func openConnections() throws -> Int? {
            try harness.rpc("daemon.status")["connections"]?["open"]?.intValue
        }

        try queue(below, then: "under the cap")
        XCTAssertTrue(try waitUntil(timeout: 60) { try submitted("under the cap") }, "the daemon answered \(below) requests")
        XCTAssertEqual(
            try openConnections(), 2, "with \(below * replyBytes) bytes unread (under 64 MiB) the connection stays (it and the status one)")

        XCTAssertEqual(try harness.rpc("daemon.status")["connections"]?["cut_off"]?.intValue, 0, "no one cut off yet")

        try queue(above - below, then: "over the cap")
        XCTAssertTrue(
            try waitUntil(timeout: 60) { try harness.rpc("daemon.status")["connections"]?["cut_off"]?.intValue == 1 },
            "with \(above * replyBytes) bytes of replies unread (over 64 MiB) the daemon cuts the client off")
        XCTAssertFalse(try submitted("over the cap"), "nothing after the cut was served")
        // Reading now gets what was queued, then the reason, then the end of the stream.
        var last: JSON = .null
        var closed = false
        while !closed {
            do {
                let line = try greedy.readLine(timeout: 30)
                if line.count < 1000 { last = try JSON.parse(line) }
            } catch let error as HarnessError where error.description.contains("closed the connection") {
                closed = true
            }
        }
        XCTAssertEqual(last["error"]?["code"]?.intValue, -32012, "the last line says why: \(last.encoded)")
        XCTAssertTrue(try waitUntil(timeout: 30) { try openConnections() == 1 }, "the connection is gone")
        XCTAssertNotNil(try harness.rpc("daemon.status")["pid"]?.intValue, "the daemon still answers")
    }
}
