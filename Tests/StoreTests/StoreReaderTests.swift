import XCTest

@testable import Store

final class StoreReaderTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var writer: StoreWriter!
    private var reader: StoreReader!

    override func setUp() async throws {
        directory = try TemporaryDirectory()
        writer = try StoreWriter(path: directory.databasePath, clock: ManualClock())
        writer.start()
        reader = try StoreReader(path: directory.databasePath)
    }

    override func tearDown() async throws {
        writer.close()
        reader = nil
        writer = nil
        directory.remove()
    }

    private func write(_ ops: [WriteOp]) async throws {
        try await writer.write(ops)
    }

    // MARK: Jobs

    func testJobByIDRoundTripsEveryColumn() async throws {
        let job = JobRecord(
            id: "01JOB", planName: "w1", plan: #"{"name":"w1","steps":["a"]}"#, goal: "ünïcode \"goal\"",
            inputs: ["b": 2, "a": ["x", nil]], cwd: "/work", idempotencyKey: "key-1", status: .queued, createdAt: 42)
        try await write([.insertJob(job), .setStatus(jobID: "01JOB", status: .running, reason: nil, at: 50)])

        var expected = job
        expected.status = .running
        expected.startedAt = 50
        let stored = try await reader.read { try $0.job("01JOB") }
        XCTAssertEqual(stored, expected)
        XCTAssertEqual(stored?.inputs.encoded, #"{"b":2,"a":["x",null]}"#)

        let missing = try await reader.read { try $0.job("nope") }
        XCTAssertNil(missing)
    }

    func testJobWithoutOptionalColumns() async throws {
        let job = JobRecord(
            id: "J", planName: "p", plan: "{}", goal: "g", inputs: .object([]), cwd: nil, idempotencyKey: nil,
            status: .queued, createdAt: 1)
        try await write([.insertJob(job)])
        let stored = try reader.readNow { try $0.job("J") }
        XCTAssertEqual(stored, job)
    }

    func testJobByIdempotencyKey() async throws {
        try await write([.insertJob(Rows.job("A", key: "alpha")), .insertJob(Rows.job("B", key: "beta")), .insertJob(Rows.job("C"))])
        let alpha = try await reader.read { try $0.job(idempotencyKey: "alpha") }
        let beta = try await reader.read { try $0.job(idempotencyKey: "beta") }
        let none = try await reader.read { try $0.job(idempotencyKey: "gamma") }
        XCTAssertEqual(alpha?.id, "A")
        XCTAssertEqual(beta?.id, "B")
        XCTAssertNil(none)
    }

    func testJobsListsTheNewestOldestFirst() async throws {
        let statuses: [JobStatus] = [.succeeded, .failed, .succeeded, .queued, .succeeded, .running]
        // Inserted out of order: the list is ordered by id, which sorts by creation time.
        var ops: [WriteOp] = []
        for i in [3, 0, 5, 1, 4, 2] {
            ops.append(.insertJob(Rows.job("J\(i)", status: statuses[i])))
        }
        try await write(ops)

        let newestThree = try await reader.read { try $0.jobs(status: nil, limit: 3) }
        XCTAssertEqual(newestThree.map(\.id), ["J3", "J4", "J5"])
        let all = try await reader.read { try $0.jobs(status: nil, limit: 100) }
        XCTAssertEqual(all.map(\.id), ["J0", "J1", "J2", "J3", "J4", "J5"])
        let succeeded = try await reader.read { try $0.jobs(status: .succeeded, limit: 2) }
        XCTAssertEqual(succeeded.map(\.id), ["J2", "J4"])
        let cancelled = try await reader.read { try $0.jobs(status: .cancelled, limit: 10) }
        XCTAssertEqual(cancelled, [])
        let zero = try await reader.read { try $0.jobs(status: nil, limit: 0) }
        XCTAssertEqual(zero, [])
    }

    func testUnfinishedJobsAreTheNonTerminalOnesOldestFirst() async throws {
        var ops: [WriteOp] = []
        for (i, status) in JobStatus.allCases.enumerated().reversed() {
            ops.append(.insertJob(Rows.job("J\(i)", status: status)))
        }
        try await write(ops)
        let unfinished = try await reader.read { try $0.unfinishedJobs() }
        XCTAssertEqual(unfinished.map(\.status), [.queued, .running, .awaitingApproval])
        XCTAssertEqual(unfinished.map(\.id), ["J0", "J1", "J2"])
    }

    func testStatusCounts() async throws {
        try await write([
            .insertJob(Rows.job("A", status: .queued)), .insertJob(Rows.job("B", status: .queued)),
            .insertJob(Rows.job("C", status: .succeeded)), .insertJob(Rows.job("D", status: .cancelled)),
        ])
        let counts = try await reader.read { try $0.statusCounts() }
        XCTAssertEqual(counts, [.queued: 2, .succeeded: 1, .cancelled: 1])
        let second = try StoreReader(path: directory.databasePath)
        try await write([.setStatus(jobID: "A", status: .failed, reason: "x", at: 1)])
        let after = try await second.read { try $0.statusCounts() }
        XCTAssertEqual(after, [.queued: 1, .failed: 1, .succeeded: 1, .cancelled: 1])
    }

    // MARK: Events

    func testEventsAfterSeqWithLimit() async throws {
        var ops: [WriteOp] = [.insertJob(Rows.job("A")), .insertJob(Rows.job("B"))]
        for seq in 1...10 {
            ops.append(.append(Rows.event("A", seq: seq, payload: ["n": .int(seq)])))
            ops.append(.append(Rows.event("B", seq: seq)))
        }
        try await write(ops)

        let all = try await reader.read { try $0.events(jobID: "A") }
        XCTAssertEqual(all.map(\.seq), Array(1...10))
        XCTAssertEqual(all.map(\.jobID), Array(repeating: "A", count: 10))
        XCTAssertEqual(all.map { $0.payload["n"]?.intValue }, (1...10).map { Optional($0) })
        let after = try await reader.read { try $0.events(jobID: "A", afterSeq: 4, limit: 3) }
        XCTAssertEqual(after.map(\.seq), [5, 6, 7])
        let tail = try await reader.read { try $0.events(jobID: "A", afterSeq: 8, limit: 100) }
        XCTAssertEqual(tail.map(\.seq), [9, 10])
        let none = try await reader.read { try $0.events(jobID: "A", afterSeq: 10) }
        XCTAssertEqual(none, [])
        let unknown = try await reader.read { try $0.events(jobID: "Z") }
        XCTAssertEqual(unknown, [])
    }

    func testEventsRoundTripEveryColumn() async throws {
        let event = EventRecord(
            jobID: "A", seq: 1, at: 77, kind: EventKind.callCompleted.rawValue, role: "critic", step: 2, attempt: 1, callID: "c9",
            payload: ["reply": "{\"verdict\":\"pass\"}", "usage": ["input_tokens": 3], "text": "line\nbreak ✓"])
        let bare = EventRecord(jobID: "A", seq: 2, at: 78, kind: EventKind.jobState.rawValue, payload: ["to": "running"])
        try await write([.insertJob(Rows.job("A")), .append(event), .append(bare)])
        let stored = try await reader.read { try $0.events(jobID: "A") }
        XCTAssertEqual(stored, [event, bare])
    }

    func testCompletedCallsPerRole() async throws {
        var ops: [WriteOp] = [.insertJob(Rows.job("A")), .insertJob(Rows.job("B"))]
        let calls: [(String, String)] = [
            (EventKind.callStarted.rawValue, "planner"), (EventKind.callCompleted.rawValue, "planner"),
            (EventKind.callStarted.rawValue, "actor"), (EventKind.callCompleted.rawValue, "actor"),
            (EventKind.callStarted.rawValue, "actor"), (EventKind.callFailed.rawValue, "actor"),
            (EventKind.callStarted.rawValue, "actor"), (EventKind.callCompleted.rawValue, "actor"),
            (EventKind.callStarted.rawValue, "critic"), (EventKind.callCompleted.rawValue, "critic"),
        ]
        for (i, (kind, role)) in calls.enumerated() {
            ops.append(.append(Rows.event("A", seq: i + 1, kind: kind, role: role, callID: "c\(i / 2 + 1)")))
        }
        ops.append(.append(Rows.event("B", seq: 1, kind: EventKind.callCompleted.rawValue, role: "verifier")))
        try await write(ops)
        let counts = try await reader.read { try $0.completedCalls(jobID: "A") }
        XCTAssertEqual(counts, ["planner": 1, "actor": 2, "critic": 1])
        let other = try await reader.read { try $0.completedCalls(jobID: "B") }
        XCTAssertEqual(other, ["verifier": 1])
        let none = try await reader.read { try $0.completedCalls(jobID: "C") }
        XCTAssertEqual(none, [:])
    }

    // MARK: The connection

    func testSeesCommitsMadeAfterItOpened() async throws {
        let before = try await reader.read { try $0.job("late") }
        XCTAssertNil(before)
        try await write([.insertJob(Rows.job("late"))])
        let after = try await reader.read { try $0.job("late") }
        XCTAssertEqual(after?.id, "late")
    }

    func testIsReadOnly() async throws {
        do {
            try await reader.read { db in
                try db.execute("INSERT INTO jobs(id, plan_name, plan, goal, status, created_at) VALUES ('x', 'p', '{}', 'g', 'queued', 1)")
            }
            XCTFail("the reader wrote")
        } catch {
            XCTAssertFalse(error.message.isEmpty)
        }
        let job = try reader.readNow { try $0.job("x") }
        XCTAssertNil(job)
    }

    func testErrorsThrownInTheBodyBecomeStoreErrors() async throws {
        struct Oops: Error {}
        do {
            _ = try await reader.read { _ -> Int in throw Oops() }
            XCTFail("no error")
        } catch {
            XCTAssertEqual(error.operation, "read")
            XCTAssertTrue(error.message.contains("Oops"), error.message)
        }
        XCTAssertThrowsError(try reader.readNow { _ in throw Oops() })
    }

    func testOpeningAMissingDatabaseFails() {
        XCTAssertThrowsError(try StoreReader(path: directory.path + "/missing.db"))
    }
}
