import Foundation
import Store
import TestSupport
import XCTest

/// `audit.verify`, `audit.search`, `stats.get`, `daemon.backup` and `job.transcript`'s renderings
/// over the socket, and the CLI commands built on them: the same output whether they reach the
/// daemon (`--socket`) or open the database themselves (`--db`, no daemon).
final class RecordMethodsTests: EndToEndTestCase {
    /// Two finished jobs, one of them failed, so every figure has something to show.
    private func runJobs() throws -> (ok: String, failed: String) {
        let ok = try harness.cli("submit", Locations.shippedPlans + "/w1.yaml", "--wait", "--json")
        XCTAssertEqual(ok.status, 0, "\(ok)")
        let failing = try harness.cli(["submit", try harness.preparePlan("verifier-fails.yaml"), "--wait", "--json"])
        XCTAssertEqual(failing.status, 1, "\(failing)")
        return (
            try XCTUnwrap(try parseJSON(ok.stdout)["id"]?.stringValue), try XCTUnwrap(try parseJSON(failing.stdout)["id"]?.stringValue)
        )
    }

    func testTheCLIPrintsTheSameThroughTheDaemonAndFromTheFile() throws {
        try harness.start()
        let (ok, failed) = try runJobs()
        let commands: [[String]] = [
            ["audit", "verify", "--all"], ["audit", "verify", "--all", "--json"], ["audit", "verify", ok],
            ["audit", "verify", failed, "--json"],
            ["audit", "verify", "01NOSUCHJOB0000000"], ["audit", "search", "output"], ["audit", "search", "output", "--rank", "--json"],
            ["audit", "search", "\"unbalanced"], ["stats"], ["stats", "--json"], ["stats", "--plan", "w1"],
            ["transcript", ok], ["transcript", failed, "--format", "md"], ["transcript", ok, "--format", "jsonl"],
            ["transcript", ok, "--format", "html"], ["transcript", "01NOSUCHJOB0000000"],
        ]
        // With a daemon, through it: the --db given names no file, so nothing came from a file.
        let nowhere = harness.dir + "/no-such.db"
        var viaDaemon: [CommandResult] = []
        for command in commands { viaDaemon.append(try harness.cli(command + ["--db", nowhere])) }
        harness.sendSignal(SIGTERM)
        _ = try harness.waitForExit()
        for (command, daemon) in zip(commands, viaDaemon) {
            let file = try harness.cli(command + ["--db", harness.dbPath], socket: false)
            XCTAssertEqual(file.status, daemon.status, "\(command): exit status, daemon \(daemon) / file \(file)")
            XCTAssertEqual(file.stdout, daemon.stdout, "\(command): the same output")
            XCTAssertEqual(file.stderr, daemon.stderr, "\(command): the same error")
        }
        // What each showed is what it should.
        XCTAssertTrue(viaDaemon[0].stdout.hasPrefix("OK: 2 jobs"), "\(viaDaemon[0])")
        XCTAssertEqual(viaDaemon[4].status, 2, "no such job: \(viaDaemon[4])")
        XCTAssertTrue(viaDaemon[4].stderr.contains("no such job: 01NOSUCHJOB0000000"), "\(viaDaemon[4])")
        XCTAssertTrue(viaDaemon[5].stdout.contains(ok), "\(viaDaemon[5])")
        XCTAssertEqual(viaDaemon[7].status, 1, "a query FTS5 cannot parse: \(viaDaemon[7])")
        XCTAssertTrue(viaDaemon[8].stdout.contains("Per plan"), "\(viaDaemon[8])")
        XCTAssertTrue(viaDaemon[14].stdout.hasPrefix("<!DOCTYPE html>"), String(viaDaemon[14].stdout.prefix(100)))
        XCTAssertEqual(viaDaemon[15].status, 1, "\(viaDaemon[15])")
    }

    /// The methods' results and refusals, as a client in another language sees them.
    func testRecordMethodsOverTheSocket() throws {
        try harness.start()
        let (ok, failed) = try runJobs()
        let connection = try harness.connect()

        let all = try connection.call("audit.verify")
        XCTAssertEqual(all["ok"]?.boolValue, true, all.encoded)
        XCTAssertEqual(all["jobs"]?.intValue, 2, all.encoded)
        XCTAssertEqual(Set(all["reports"]?.arrayValue?.compactMap { $0["job"]?.stringValue } ?? []), [ok, failed])
        let one = try connection.call("audit.verify", ["job": .string(ok)])
        XCTAssertEqual(one["reports"]?.arrayValue?.first?["ok"]?.boolValue, true, one.encoded)
        XCTAssertEqual(try connection.request("audit.verify", ["job": "NOSUCH"])["error"]?["code"]?.intValue, -32002)

        let hits = try connection.call("audit.search", ["query": "output", "job": .string(ok), "limit": 3])
        XCTAssertEqual(hits["hits"]?.arrayValue?.count, 3, hits.encoded)
        XCTAssertTrue(hits["hits"]?.arrayValue?.allSatisfy { $0["job"]?.stringValue == ok } == true, hits.encoded)
        XCTAssertEqual(try connection.request("audit.search", ["query": "\"unbalanced"])["error"]?["code"]?.intValue, -32602)
        XCTAssertEqual(try connection.request("audit.search", [:])["error"]?["code"]?.intValue, -32602, "the query is required")

        let stats = try connection.call("stats.get", ["plan": "w1"])
        XCTAssertEqual(stats["plans"]?.arrayValue?.map { $0["plan"]?.stringValue ?? "" }, ["w1"], stats.encoded)

        let md = try connection.call("job.transcript", ["id": .string(ok), "format": "md"])
        XCTAssertEqual(md["format"]?.stringValue, "md")
        XCTAssertEqual(md["job"]?["id"]?.stringValue, ok)
        XCTAssertTrue(md["text"]?.stringValue?.hasPrefix("# ") == true, String(md["text"]?.stringValue?.prefix(80) ?? ""))
        let paged = try connection.request("job.transcript", ["id": .string(ok), "format": "md", "limit": 5])
        XCTAssertEqual(paged["error"]?["code"]?.intValue, -32602, "a rendering is the whole job: \(paged.encoded)")
        XCTAssertEqual(try connection.request("job.transcript", ["id": .string(ok), "format": "pdf"])["error"]?["code"]?.intValue, -32602)

        // A backup without a path goes to the daemon's backup directory; the owner may name one.
        let made = try connection.call("daemon.backup")
        let path = try XCTUnwrap(made["path"]?.stringValue)
        XCTAssertTrue(path.hasPrefix(harness.dir + "/backups/agentd-"), path)
        XCTAssertEqual(made["jobs"]?.intValue, 2, made.encoded)
        XCTAssertEqual(try harness.sqlite("SELECT count(*) FROM jobs", db: path).trimmingCharacters(in: .whitespacesAndNewlines), "2")
        let chosen = harness.dir + "/chosen.db"
        XCTAssertEqual(try connection.call("daemon.backup", ["path": .string(chosen)])["path"]?.stringValue, chosen)
        let again = try connection.request("daemon.backup", ["path": .string(chosen)])
        XCTAssertEqual(again["error"]?["code"]?.intValue, -32602, "an existing file is never overwritten: \(again.encoded)")
        XCTAssertEqual(try connection.request("daemon.backup", ["path": "relative.db"])["error"]?["code"]?.intValue, -32602)
    }

    /// A member of the allowed group may ask for a backup, into the daemon's directory only.
    func testANonOwnerNeverChoosesWhereABackupIsWritten() throws {
        try OtherUser.ensure()
        try harness.start(extraArguments: ["--allow-group", try OtherUser.groupName()])
        OtherUser.openTheWay(harness)
        let target = harness.dir + "/theirs.db"
        let refused = try OtherUser.rpc(harness, "daemon.backup", ["path": .string(target)])
        XCTAssertEqual(refused["error"]?["code"]?.intValue, -32008, refused.encoded)
        XCTAssertTrue(refused["error"]?["message"]?.stringValue?.contains("(rule: daemon.backup.path)") == true, refused.encoded)
        XCTAssertFalse(FileManager.default.fileExists(atPath: target), "nothing was written there")
        let allowed = try OtherUser.rpc(harness, "daemon.backup", [:])
        let path = try XCTUnwrap(allowed["result"]?["path"]?.stringValue, allowed.encoded)
        XCTAssertTrue(path.hasPrefix(harness.dir + "/backups/"), path)
    }
}
