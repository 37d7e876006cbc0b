import Foundation
import Store
import XCTest

/// A secret's value (an environment variable named secret) is taken out of every event before it is
/// stored, out of every reply and notification, and out of the daemon's log — the database file and
/// the logs are searched byte by byte.
final class SecretRedactionTests: EndToEndTestCase {
    func testASecretValueIsInNoEventReplyOrLogLine() throws {
        let secret = "tok-\(UUID().uuidString)"
        harness.daemonEnvironment["SECRET_TOKEN"] = secret
        // A log line that carries the secret: an OTLP endpoint with the token in its query, which the
        // daemon names when it starts (and again when an export fails: nothing listens on port 9).
        harness.daemonEnvironment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = "http://127.0.0.1:9/v1/traces?token=\(secret)"
        try harness.start(extraArguments: ["--secret-env", "SECRET_TOKEN", "--log-level", "trace"])
        let plan = try harness.preparePlan("secret-echo.yaml")
        // The goal carries the secret too (a user pasted it): the job row is redacted as well.
        let result = try harness.cli(["submit", plan, "--goal", "use \(secret) carefully", "--wait", "--json"], timeout: 60)
        XCTAssertFalse(result.stdout.contains(secret), "the reply to the client is redacted: \(result.stdout)")
        let job = try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(result)")
        let id = try XCTUnwrap(job["id"]?.stringValue)

        let transcript = try harness.cli("transcript", id, "--format", "jsonl")
        XCTAssertFalse(transcript.stdout.contains(secret))
        XCTAssertTrue(transcript.stdout.contains("[REDACTED:SECRET_TOKEN]"), "the place of the secret is marked: \(transcript.stdout)")
        let completed = events(try harness.events(id), kind: "call.completed", role: "actor").first
        XCTAssertEqual(completed?["payload"]?["reply"]?.stringValue, "the token is [REDACTED:SECRET_TOKEN]")

        harness.cleanUpDaemon()
        let needle = Array(secret.utf8)
        for path in [harness.dbPath, harness.dbPath + "-wal"] + harness.logPaths {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            XCTAssertNil(Array(data).firstRange(of: needle), "the secret appears in \(path)")
        }
        XCTAssertTrue(
            harness.daemonLog().contains("url=http://127.0.0.1:9/v1/traces?token=[REDACTED:SECRET_TOKEN]"),
            "the log line that carried the secret was written, redacted: \(harness.daemonLog())")
    }

    /// `job.watch` notifications, from the record and live, carry the secret's place, never its
    /// value: the actor's reply is sent to the watcher as it is committed, not read back from the
    /// database (where the store redacted it), so only the daemon's reply path redacts it.
    func testWatchNotificationsAreRedacted() throws {
        let secret = "tok-\(UUID().uuidString)"
        harness.daemonEnvironment["SECRET_TOKEN"] = secret
        try harness.start(extraArguments: ["--secret-env", "SECRET_TOKEN"])
        let plan = try harness.preparePlan("secret-echo-gated.yaml")
        let id = try submit(plan, ["--goal", "use \(secret) carefully"])
        // The actor waits for the gate: open it once the watch has delivered the actor's start.
        try harness.waitForEvent(id, "actor call.started") {
            $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor"
        }
        let connection = try harness.connect()
        var notifications: [String] = []
        var released = false
        let final = try connection.call("job.watch", ["id": .string(id), "since": .int(0)], timeout: 60) { note in
            notifications.append(note.encoded)
            if !released, note["params"]?["kind"]?.stringValue == "call.started", note["params"]?["role"]?.stringValue == "actor" {
                released = true
                _ = FileManager.default.createFile(atPath: harness.dir + "/gate", contents: Data())
            }
        }
        XCTAssertTrue(released, "the watch delivered the actor's start before its reply")
        XCTAssertEqual(final["status"]?.stringValue, "succeeded", final.encoded)
        let all = notifications.joined(separator: "\n")
        XCTAssertFalse(all.contains(secret), "a notification carries the secret: \(all)")
        let reply = notifications.filter { $0.contains("call.completed") && $0.contains("the token is [REDACTED:SECRET_TOKEN]") }
        XCTAssertEqual(reply.count, 1, "the actor's reply is delivered with the secret's place marked: \(all)")
        XCTAssertFalse(final.encoded.contains(secret), final.encoded)
    }
}
