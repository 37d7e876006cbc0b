import Foundation
import TestSupport
import XCTest

@testable import Store

/// The writer on a file system that really runs out of space (a small tmpfs): a failed commit is
/// rolled back whole, the writer refuses writes while degraded and recovers by itself when space
/// returns, and no chain is ever built on an event that was not committed.
final class StorageFaultTests: XCTestCase {
    private var fs: SmallFileSystem?

    override func tearDown() {
        fs?.unmount()
        fs = nil
        super.tearDown()
    }

    private func smallFileSystem() throws -> SmallFileSystem {
        let fs = try SmallFileSystem(megabytes: 8)
        self.fs = fs
        return fs
    }

    func testAFullDiskFailsTheCommitWholeRefusesWritesAndRecoversWithEveryChainWhole() async throws {
        let fs = try smallFileSystem()
        let path = fs.path + "/agentd.db"
        let writer = try StoreWriter(path: path, clock: ManualClock(), probeInterval: 0.02, minimumFreeBytes: 1 << 20)
        let changes = Locked<[String]>([])
        writer.observeStorage { fault in changes.withLock { $0.append(fault.map { "degraded: \($0.cause)" } ?? "ok") } }
        writer.start()
        defer { writer.close() }

        try await writer.write([.insertJob(Rows.job("A"))] + (1...3).map { .append(Rows.event("A", seq: $0)) })
        try await writer.write([.insertJob(Rows.job("B"))] + (1...2).map { .append(Rows.event("B", seq: $0)) })

        try fs.fill()
        // One batch that would extend both chains: it fails whole, at COMMIT, after the writer hashed
        // its events into the chains it keeps in memory.
        let bigPayload: JSON = ["text": .string(String(repeating: "x", count: 64 * 1024))]
        var failure: StoreError?
        do {
            try await writer.write(
                (4...6).map { .append(Rows.event("A", seq: $0, payload: bigPayload)) } + [
                    .append(Rows.event("B", seq: 3, payload: bigPayload))
                ])
        } catch {
            failure = error
        }
        let full = try XCTUnwrap(failure, "a commit on a full file system fails")
        XCTAssertTrue(full.isStorageFault, "\(full)")
        XCTAssertEqual(full.primaryCode, 13, "SQLITE_FULL: \(full)")
        let fault = try XCTUnwrap(writer.storageFault, "the writer is degraded")
        XCTAssertTrue(fault.isDiskFull)
        XCTAssertEqual(fault.cause, "disk full writing the database (SQLITE_FULL)")

        // While degraded every write is refused at once, with the fault, and nothing reaches the file.
        var refusal: StoreError?
        do {
            try await writer.write([.insertJob(Rows.job("C"))])
        } catch {
            refusal = error
        }
        XCTAssertEqual(refusal?.isStorageFault, true, "\(String(describing: refusal))")
        XCTAssertTrue(
            refusal?.message.contains("storage unavailable: disk full writing the database (SQLITE_FULL)") ?? false,
            "\(String(describing: refusal))")

        // What was committed is intact.
        let db = try Database(path: path, readOnly: true)
        XCTAssertEqual(
            try db.query("SELECT job_id, count(*) FROM events GROUP BY job_id ORDER BY job_id"),
            [[.text("A"), .int(3)], [.text("B"), .int(2)]])
        XCTAssertNil(try db.verifyChain(jobID: "A")?.problem)
        XCTAssertNil(try db.verifyChain(jobID: "B")?.problem)

        fs.drain()
        XCTAssertTrue(waitFor(timeout: 30) { writer.storageFault == nil }, "the writer recovers by itself once space is back")
        XCTAssertEqual(changes.value, ["degraded: disk full writing the database (SQLITE_FULL)", "ok"], "each change is reported once")

        // The jobs go on from what was committed, as recovered jobs do: the same seqs again.
        try await writer.write((4...6).map { .append(Rows.event("A", seq: $0, payload: ["again": .int($0)])) })
        try await writer.write([.append(Rows.event("B", seq: 3, payload: ["again": 3])), .insertJob(Rows.job("C"))])
        try await writer.write([.append(Rows.event("C", seq: 1))])
        for job in ["A", "B", "C"] {
            let report = try XCTUnwrap(try db.verifyChain(jobID: job))
            XCTAssertNil(report.problem, "\(job): \(String(describing: report.problem))")
        }
        XCTAssertEqual(
            try db.query("SELECT job_id, length FROM job_chains ORDER BY job_id"),
            [
                [.text("A"), .int(6)], [.text("B"), .int(3)], [.text("C"), .int(1)],
            ])
    }

    func testWhileTheDiskStaysFullTheWriterStaysDegraded() async throws {
        let fs = try smallFileSystem()
        let path = fs.path + "/agentd.db"
        let writer = try StoreWriter(path: path, clock: ManualClock(), probeInterval: 0.01, minimumFreeBytes: 1 << 20)
        let probesSeen = Locked(0)
        writer.observeStorage { _ in probesSeen.withLock { $0 += 1 } }
        writer.start()
        defer { writer.close() }
        try await writer.write([.insertJob(Rows.job("A")), .append(Rows.event("A", seq: 1))])
        // Room for part of the next commit: it fails after the WAL grew into that room, which stays
        // allocated — a small write would fit in it, so only the free-space check keeps the writer
        // from declaring itself recovered on a full disk.
        try fs.fill(leaving: 256 << 10)
        do {
            try await writer.write([.append(Rows.event("A", seq: 2, payload: ["text": .string(String(repeating: "y", count: 1 << 20))]))])
            XCTFail("a commit larger than the space left fails")
        } catch {
            XCTAssertEqual(error.primaryCode, 13, "the disk is full (SQLITE_FULL): \(error)")
            XCTAssertTrue(error.isStorageFault, "\(error)")
        }
        XCTAssertEqual(writer.storageFault?.isDiskFull, true, "\(String(describing: writer.storageFault))")
        // Many probes look at the full disk; none lets the writer out.
        XCTAssertTrue(waitFor(timeout: 30) { writer.currentStats.probes >= 20 }, "the writer probes: \(writer.currentStats.probes)")
        for seq in 2...5 {
            do {
                try await writer.write([.append(Rows.event("A", seq: seq))])
                XCTFail("a write went through while the disk is full (seq \(seq))")
            } catch {
                XCTAssertTrue(error.isStorageFault, "\(error)")
                XCTAssertEqual(error.primaryCode, 13, "refused with the fault that stands (SQLITE_FULL): \(error)")
            }
        }
        XCTAssertNotNil(writer.storageFault)
        XCTAssertEqual(probesSeen.value, 1, "degraded once, never recovered while full")
    }

    func testFaultNamesTheSQLiteCode() {
        XCTAssertEqual(
            StorageFault(error: StoreError(code: 778, operation: "COMMIT", message: "disk I/O error"), since: 0).cause,
            "I/O error writing the database (SQLITE_IOERR_WRITE)")
        XCTAssertEqual(
            StorageFault(error: StoreError(code: 8, operation: "COMMIT", message: "attempt to write a readonly database"), since: 0).cause,
            "the database is read-only (SQLITE_READONLY)")
        XCTAssertEqual(StoreError(code: 4874, operation: "x", message: "y").codeName, "SQLITE_IOERR_SHMSIZE")
        XCTAssertEqual(StoreError(code: 10 | (99 << 8), operation: "x", message: "y").codeName, "SQLITE_IOERR (extended code 25354)")
        XCTAssertTrue(StoreError(code: 13, operation: "x", message: "y").isStorageFault)
        XCTAssertFalse(StoreError(code: 19, operation: "x", message: "y").isStorageFault)
    }

    /// Polls `condition` until it holds or `timeout` seconds pass; the wait is never an assertion by itself.
    private func waitFor(timeout: Double, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            if Date() >= deadline { return false }
            usleep(10_000)
        }
        return true
    }
}
