import Foundation
import Synchronization
import XCTest

@testable import Store

final class StoreWriterTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
    }

    override func tearDown() {
        directory.remove()
    }

    private func makeWriter() throws -> StoreWriter {
        try StoreWriter(path: directory.databasePath, clock: ManualClock())
    }

    /// A second connection, as another process or the reader would see the file.
    private func observer() throws -> Database {
        try Database(path: directory.databasePath, readOnly: true)
    }

    /// A connection confined to the writer thread, where completions run.
    private final class CompletionConnection: @unchecked Sendable {
        let db: Database
        init(_ db: Database) { self.db = db }

        func eventExists(job: String, seq: Int) -> Bool {
            let rows = try? db.query("SELECT count(*) FROM events WHERE job_id = ? AND seq = ?", [.text(job), .int(Int64(seq))])
            return rows?.first?.first?.int == 1
        }
    }

    // MARK: Concurrency and commit-before-deliver

    func testConcurrentWritesAllCommitAndCompleteOnceAfterTheyAreVisible() throws {
        let writer = try makeWriter()
        writer.start()
        let seeing = CompletionConnection(try observer())
        let threads = 8
        let perThread = 100
        let calls = Tally<String>()
        let visibleWhenDone = Tally<Bool>()
        let errors = Locked<[String]>([])
        let done = expectation(description: "every completion")
        done.expectedFulfillmentCount = threads * perThread
        done.assertForOverFulfill = true

        DispatchQueue.concurrentPerform(iterations: threads) { t in
            for i in 0..<perThread {
                let job = "T\(t)-\(i)"
                writer.submit([
                    .insertJob(Rows.job(job)),
                    .append(Rows.event(job, seq: 1)),
                    .append(Rows.event(job, seq: 2, payload: ["thread": .int(t), "i": .int(i)])),
                ]) { error in
                    if let error { errors.withLock { $0.append("\(job): \(error)") } }
                    calls.add(job)
                    // Completions run on the writer thread; a separate connection must already see the rows.
                    visibleWhenDone.add(seeing.eventExists(job: job, seq: 2))
                    done.fulfill()
                }
            }
        }
        wait(for: [done], timeout: 60)
        writer.close()

        XCTAssertEqual(errors.withLock { $0 }, [])
        let counts = calls.snapshot
        XCTAssertEqual(counts.count, threads * perThread)
        XCTAssertEqual(Set(counts.values), [1], "each completion runs exactly once")
        XCTAssertEqual(visibleWhenDone.snapshot, [true: threads * perThread])

        let db = try observer()
        XCTAssertEqual(try db.query("SELECT count(*) FROM jobs"), [[.int(Int64(threads * perThread))]])
        XCTAssertEqual(try db.query("SELECT count(*) FROM events"), [[.int(Int64(2 * threads * perThread))]])
        let stats = writer.currentStats
        XCTAssertEqual(stats.requests, threads * perThread)
        XCTAssertEqual(stats.events, 2 * threads * perThread)
        XCTAssertEqual(stats.failures, 0)
        XCTAssertLessThanOrEqual(stats.commits, stats.requests)
    }

    func testConcurrentTasksAwaitingWriteSeeTheirRows() async throws {
        let writer = try makeWriter()
        writer.start()
        let reader = try StoreReader(path: directory.databasePath)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<50 {
                group.addTask {
                    let job = "task-\(t)"
                    try await writer.write([.insertJob(Rows.job(job)), .append(Rows.event(job, seq: 1))])
                    let stored = try await reader.read { try $0.events(jobID: job) }
                    XCTAssertEqual(stored.map(\.seq), [1], job)
                }
            }
            try await group.waitForAll()
        }
        writer.close()
    }

    // MARK: Group commit

    func testRequestsQueuedTogetherShareOneCommit() throws {
        let writer = try makeWriter()
        let count = 500
        let done = expectation(description: "all committed")
        done.expectedFulfillmentCount = count
        // Queued before the thread starts, so they are all waiting when it takes its first batch.
        for i in 0..<count {
            writer.submit([.insertJob(Rows.job("J\(i)")), .append(Rows.event("J\(i)", seq: 1))]) { error in
                XCTAssertNil(error)
                done.fulfill()
            }
        }
        writer.start()
        wait(for: [done], timeout: 30)
        writer.close()

        let stats = writer.currentStats
        XCTAssertEqual(stats.requests, count)
        XCTAssertEqual(stats.events, count)
        XCTAssertEqual(stats.commits, 1)
        XCTAssertEqual(try observer().query("SELECT count(*) FROM jobs"), [[.int(Int64(count))]])
    }

    func testAFailingRequestIsIsolatedFromTheOthersInItsBatch() throws {
        let writer = try makeWriter()
        let results = Locked<[String: StoreError?]>([:])
        let done = expectation(description: "all completed")
        done.expectedFulfillmentCount = 4
        done.assertForOverFulfill = true
        func submit(_ name: String, _ ops: [WriteOp]) {
            writer.submit(ops) { error in
                results.withLock { $0[name] = .some(error) }
                done.fulfill()
            }
        }
        submit("first", [.insertJob(Rows.job("A")), .append(Rows.event("A", seq: 1))])
        submit("duplicate seq", [.append(Rows.event("A", seq: 1, kind: "job.state"))])
        // Atomic: the job row must not survive its request's failing second op.
        submit("half", [.insertJob(Rows.job("H")), .append(Rows.event("H", seq: 1, role: "judge"))])
        submit("last", [.insertJob(Rows.job("B")), .append(Rows.event("B", seq: 1))])
        writer.start()
        wait(for: [done], timeout: 30)
        writer.close()

        let outcome = results.withLock { $0 }
        XCTAssertNil(outcome["first"] ?? nil)
        XCTAssertNil(outcome["last"] ?? nil)
        let duplicate = outcome["duplicate seq"] ?? nil
        XCTAssertEqual(duplicate?.primaryCode, 19, "SQLITE_CONSTRAINT: \(String(describing: duplicate))")
        XCTAssertTrue(duplicate?.message.contains("UNIQUE") ?? false, duplicate?.message ?? "no error")
        XCTAssertNotNil(outcome["half"] ?? nil)

        let db = try observer()
        XCTAssertEqual(try db.query("SELECT id FROM jobs ORDER BY id"), [[.text("A")], [.text("B")]])
        XCTAssertEqual(
            try db.query("SELECT job_id, seq, kind FROM events ORDER BY job_id"),
            [
                [.text("A"), .int(1), .text("job.state")], [.text("B"), .int(1), .text("job.state")],
            ])
        let stats = writer.currentStats
        XCTAssertEqual(stats.failures, 2)
        XCTAssertEqual(stats.requests, 2)
        XCTAssertNotNil(stats.lastError)
    }

    func testWriteThrowsTheStoreError() async throws {
        let writer = try makeWriter()
        writer.start()
        try await writer.write([.insertJob(Rows.job("A"))])
        do {
            try await writer.write([.insertJob(Rows.job("A"))])
            XCTFail("a duplicate job id was accepted")
        } catch {
            XCTAssertEqual(error.primaryCode, 19)
        }
        writer.close()
    }

    // MARK: Status updates

    func testSetStatusStampsStartAndFinish() throws {
        let writer = try makeWriter()
        writer.start()
        let done = expectation(description: "written")
        writer.submit([
            .insertJob(Rows.job("A")),
            .setStatus(jobID: "A", status: .running, reason: nil, at: 10),
            // A second `running` (a resumed job) keeps the first start time.
            .setStatus(jobID: "A", status: .running, reason: nil, at: 20),
            .insertJob(Rows.job("B")),
            .setStatus(jobID: "B", status: .running, reason: nil, at: 30),
            .setStatus(jobID: "B", status: .failed, reason: "why", at: 40),
        ]) { error in
            XCTAssertNil(error)
            done.fulfill()
        }
        wait(for: [done], timeout: 30)
        writer.close()
        let rows = try observer().query("SELECT id, status, reason, started_at, finished_at FROM jobs ORDER BY id")
        XCTAssertEqual(
            rows,
            [
                [.text("A"), .text("running"), .null, .int(10), .null],
                [.text("B"), .text("failed"), .text("why"), .int(30), .int(40)],
            ])
    }

    // MARK: Closing

    func testCloseDrainsTheQueueAndLaterSubmitsFail() throws {
        let writer = try makeWriter()
        writer.start()
        let completed = Locked(0)
        let failed = Locked(0)
        for i in 0..<200 {
            writer.submit([.insertJob(Rows.job("J\(i)"))]) { error in
                if error == nil { completed.withLock { $0 += 1 } } else { failed.withLock { $0 += 1 } }
            }
        }
        writer.close()
        // close() returns only after every queued request was committed and completed.
        XCTAssertEqual(completed.withLock { $0 }, 200)
        XCTAssertEqual(failed.withLock { $0 }, 0)
        XCTAssertEqual(try observer().query("SELECT count(*) FROM jobs"), [[.int(200)]])

        let late = Locked<StoreError??>(nil)
        writer.submit([.insertJob(Rows.job("late"))]) { error in late.withLock { $0 = .some(error) } }
        // The refusal is immediate: no thread is left to run it later.
        let refusal = late.withLock { $0 }
        XCTAssertNotNil(refusal ?? nil)
        XCTAssertTrue((refusal ?? nil)?.message.contains("closed") ?? false)
        XCTAssertEqual(try observer().query("SELECT count(*) FROM jobs WHERE id = 'late'"), [[.int(0)]])
    }

    func testCloseCheckpointsTheWAL() throws {
        let writer = try makeWriter()
        writer.start()
        let done = expectation(description: "written")
        writer.submit((0..<100).map { .insertJob(Rows.job("J\($0)")) }) { _ in done.fulfill() }
        wait(for: [done], timeout: 30)
        let wal = directory.databasePath + "-wal"
        XCTAssertGreaterThan(try FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int ?? 0, 0)
        writer.close()
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int, 0)
        XCTAssertEqual(try observer().query("SELECT count(*) FROM jobs"), [[.int(100)]])
    }

    func testClosedWriterIsReleasedWithItsConnection() throws {
        weak var released: StoreWriter?
        do {
            let writer = try makeWriter()
            released = writer
            writer.start()
            writer.close()
        }
        XCTAssertNil(released, "a closed writer that nothing references is still alive (its SQLite connection stays open)")
    }

    func testCloseWithNothingQueued() throws {
        let writer = try makeWriter()
        writer.start()
        writer.close()
        XCTAssertEqual(writer.currentStats.commits, 0)
    }
}
