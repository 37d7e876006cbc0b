import Foundation
import TestSupport
import XCTest

@testable import Orchestrator

/// Counting queued jobs per client and in total, and the error a submission over a limit gets.
final class QueuedJobsTests: XCTestCase {
    func testPerClientAndTotalLimits() throws {
        let queued = QueuedJobs(maxTotal: 3, maxPerClient: 2)
        try queued.checkRoom(for: 1000)
        queued.add("a", client: 1000)
        queued.add("b", client: 1000)
        XCTAssertThrowsError(try queued.checkRoom(for: 1000)) { error in
            let error = RPCError(error as! EngineError)
            XCTAssertEqual(error.code, -32009)
            XCTAssertEqual(
                error.message,
                "too many queued jobs: client uid 1000 has 2 jobs queued, the limit is 2 (max_queued_jobs_per_client); try again when some have started"
            )
            XCTAssertEqual(error.data, ["limit": "max_queued_jobs_per_client", "max": 2, "queued": 2, "uid": 1000])
        }
        try queued.checkRoom(for: 1001)
        queued.add("c", client: nil)  // recovered: counts in the total only
        XCTAssertEqual(queued.count(of: 1000), 2)
        XCTAssertThrowsError(try queued.checkRoom(for: 1001)) { error in
            XCTAssertEqual(
                (error as! EngineError).description,
                "too many queued jobs: 3 jobs are queued, the limit is 3 (max_queued_jobs); try again when some have started")
        }
        queued.remove("a")
        queued.remove("a")  // removing twice changes nothing
        XCTAssertEqual(queued.count, 2)
        XCTAssertEqual(queued.count(of: 1000), 1)
        try queued.checkRoom(for: 1000)
        queued.maxPerClient = 1  // a reload: what is queued stays, new submissions are refused
        XCTAssertThrowsError(try queued.checkRoom(for: 1000))
        try queued.checkRoom(for: 1001)
    }
}
