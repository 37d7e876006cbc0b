import Foundation
import Store
import XCTest

/// The database file itself: a backup taken while jobs run is whole and verifies; a damaged file is
/// refused at start with a clear message.
final class StorageTests: EndToEndTestCase {
    func testABackupTakenWhileJobsRunIsWholeAndVerifies() throws {
        try harness.start()
        let connection = try harness.connect()
        let plan = Locations.shippedPlans + "/w1.yaml"
        for i in 0..<200 {
            try connection.send(
                line: JSON.object([
                    ("jsonrpc", "2.0"), ("id", .int(i)), ("method", "job.submit"),
                    ("params", .object([("plan_path", .string(plan)), ("goal", .string("job \(i)"))])),
                ]).encoded)
        }
        // A reply says its job is committed: the copy is taken with at least one job in the database.
        XCTAssertNotNil(try connection.readMessage(timeout: 30)["result"], "a submission was acknowledged")
        let copy = harness.dir + "/copy.db"
        let backup = try harness.cli(["backup", copy, "--db", harness.dbPath], socket: false, timeout: 60)
        XCTAssertEqual(backup.status, 0, "\(backup)")
        XCTAssertTrue(backup.stdout.contains("integrity check ok"), backup.stdout)
        XCTAssertEqual(try harness.sqlite("PRAGMA quick_check", db: copy).trimmingCharacters(in: .whitespacesAndNewlines), "ok")
        let verify = try harness.cli(["audit", "verify", "--all", "--db", copy], socket: false)
        XCTAssertEqual(verify.status, 0, "every chain in the copy verifies: \(verify)")
        XCTAssertGreaterThan(
            Int(try harness.sqlite("SELECT count(*) FROM jobs", db: copy).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: copy + ".partial"))
        let again = try harness.cli(["backup", copy, "--db", harness.dbPath], socket: false)
        XCTAssertNotEqual(again.status, 0, "an existing file is never overwritten")
    }

    func testADamagedDatabaseIsRefusedAtStart() throws {
        try harness.start()
        for i in 0..<20 { _ = try submit(Locations.shippedPlans + "/w1.yaml", ["--goal", "job \(i)"]) }
        XCTAssertTrue(waitUntil(timeout: 30) { (try? harness.rpc("daemon.status")["running"]?.intValue) == 0 })
        harness.cleanUpDaemon()
        // Scribble over pages in the middle of the file (the daemon checkpointed it at exit).
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: harness.dbPath))
        let size = try handle.seekToEnd()
        XCTAssertGreaterThan(size, 64 * 1024)
        try handle.seek(toOffset: size / 2)
        handle.write(Data(repeating: 0xA5, count: 16 * 1024))
        try handle.close()

        let serve = try harness.launchServe()
        let exit = try DaemonHarness.waitForExit(serve, timeout: 30)
        XCTAssertNotEqual(exit.status, 0, "a damaged database is not served")
        let log = harness.daemonLog()
        XCTAssertTrue(log.contains("integrity check") || log.contains("malformed"), log)
    }
}
