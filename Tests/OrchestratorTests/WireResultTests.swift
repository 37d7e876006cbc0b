import Store
import TestSupport
import XCTest

@testable import Orchestrator

/// The submit result, the transcript page and the prune outcome: exact encodings, decoded back by clients.
final class WireResultTests: XCTestCase {
    private let job = WireJob(
        JobRecord(
            id: "01J", planName: "p", plan: "{}", goal: "g", inputs: .object([]), cwd: nil, idempotencyKey: "k", status: .failed,
            createdAt: 5))

    func testTranscriptPage() throws {
        let last = TranscriptPage(job: job, events: [["seq": 1]], nextAfterSeq: nil)
        XCTAssertEqual(
            last.json.encoded,
            #"{"job":{"id":"01J","plan":"p","goal":"g","status":"failed","reason":null,"inputs":{},"idempotency_key":"k","#
                + #""created_at":5,"started_at":null,"finished_at":null},"events":[{"seq":1}]}"#)
        XCTAssertEqual(try TranscriptPage(json: last.json), last)
        let full = TranscriptPage(job: job, events: [["seq": 1]], nextAfterSeq: 1)
        XCTAssertEqual(full.json["next_after_seq"], 1)
        XCTAssertEqual(try TranscriptPage(json: full.json), full)
        XCTAssertThrowsError(try TranscriptPage(json: last.json.setting("events", .null)))
    }

    func testPruneOutcome() throws {
        let summary = PruneOutcome(
            dryRun: false, before: 9, statuses: [.failed, .cancelled], result: PruneResult(jobs: 2, events: 7, pruneID: 3))
        XCTAssertEqual(
            summary.json.encoded, #"{"dry_run":false,"before":9,"statuses":["failed","cancelled"],"jobs":2,"events":7,"prune":3}"#)
        XCTAssertEqual(try PruneOutcome(json: summary.json), summary)
        let dry = PruneOutcome(dryRun: true, before: 9, statuses: JobStatus.terminal, result: PruneResult(jobs: 1, events: 2))
        XCTAssertEqual(dry.json["prune"], .null)
        XCTAssertEqual(try PruneOutcome(json: dry.json), dry)
        XCTAssertThrowsError(try PruneOutcome(json: summary.json.setting("jobs", "two"))) {
            XCTAssertEqual(($0 as? WireShapeError)?.message, "prune: 'jobs' must be an integer")
        }
    }

    func testSubmitResult() throws {
        let result = SubmitResult(job: job, created: false)
        XCTAssertEqual(result.json.encoded, String(job.json.encoded.dropLast()) + #","created":false}"#)
        XCTAssertEqual(try SubmitResult(json: result.json), result)
        XCTAssertThrowsError(try SubmitResult(json: job.json)) {
            XCTAssertEqual(($0 as? WireShapeError)?.message, "submit: 'created' must be true or false")
        }
    }
}
