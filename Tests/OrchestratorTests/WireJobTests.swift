import Store
import TestSupport
import XCTest

@testable import Orchestrator

/// The job object: the server's encoding keeps the documented shape, and clients decode it back.
final class WireJobTests: XCTestCase {
    private let record = JobRecord(
        id: "01J0000000000000AB", planName: "review", plan: "{}", goal: "g", inputs: ["dir": "/w"], cwd: "/c", idempotencyKey: nil,
        status: .succeeded, reason: "fine", createdAt: 1_795_462_645_113, startedAt: 1_795_462_645_200, finishedAt: nil)

    func testEncodingKeepsTheDocumentedShapeAndOrder() {
        XCTAssertEqual(
            WireJob.json(record).encoded,
            #"{"id":"01J0000000000000AB","plan":"review","goal":"g","status":"succeeded","reason":"fine","inputs":{"dir":"/w"},"#
                + #""idempotency_key":null,"created_at":1795462645113,"started_at":1795462645200,"finished_at":null}"#)
    }

    func testClientsDecodeWhatTheServerEncodes() throws {
        let job = WireJob(record)
        XCTAssertEqual(try WireJob(json: job.json), job)
        XCTAssertEqual(try WireJob(json: job.json.setting("created", true)), job, "extra members are ignored")
    }

    func testAWrongShapeNamesTheMember() {
        let json = WireJob(record).json
        XCTAssertThrowsError(try WireJob(json: json.setting("status", "done"))) {
            XCTAssertEqual(($0 as? WireShapeError)?.message, "job: unknown status 'done'")
        }
        XCTAssertThrowsError(try WireJob(json: json.setting("reason", 3))) {
            XCTAssertEqual(($0 as? WireShapeError)?.message, "job: 'reason' has the wrong type, got number")
        }
        XCTAssertThrowsError(try WireJob(json: json.setting("id", .null))) {
            XCTAssertEqual(($0 as? WireShapeError)?.message, "job: 'id' must be a string")
        }
    }
}
