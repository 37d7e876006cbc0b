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
        XCTAssertTrue(harness.daemonLog().contains("[REDACTED:SECRET_TOKEN]") || !harness.daemonLog().contains("tok-"), harness.daemonLog())
    }
}
