import Store
import TestSupport
import XCTest

@testable import Orchestrator

/// Engine errors become protocol errors in one place, with the codes, messages and data
/// docs/protocol.md gives.
final class EngineErrorTests: XCTestCase {
    private func wire(_ error: EngineError) -> (Int, String) {
        let rpc = RPCError(error)
        XCTAssertEqual(error.description, rpc.message, "local callers show what a client gets")
        return (rpc.code, rpc.message)
    }

    func testEachReasonHasItsCodeAndMessage() {
        XCTAssertTrue(wire(.invalidInput("'goal' contains U+0000")) == (-32602, "invalid params: 'goal' contains U+0000"))
        XCTAssertTrue(wire(.invalidPlan("p.yaml:1:1: x")) == (-32003, "invalid plan: p.yaml:1:1: x"))
        XCTAssertTrue(wire(.permissionDenied("permission denied: rule")) == (-32008, "permission denied: rule"))
        XCTAssertTrue(wire(.shuttingDown) == (-32004, "the daemon is shutting down and accepts no new jobs"))
        XCTAssertTrue(wire(.storage("disk I/O error")) == (-32005, "storage error: disk I/O error"))
        XCTAssertTrue(wire(.jobNotFound("01X")) == (-32002, "no such job: 01X"))
        XCTAssertTrue(wire(.workspaceRefused("the workspace '/'")) == (-32011, "workspace refused: the workspace '/'"))
        XCTAssertEqual(wire(.workspaceInUse("/w", job: "01J", status: .running)).0, -32006)
        XCTAssertEqual(RPCError(.workspaceInUse("/w", job: "01J", status: nil)).data, ["job": "01J", "workspace": "/w"])
        let queued = RPCError(.tooManyQueued(limit: "max_queued_jobs", max: 3, queued: 3, client: nil))
        XCTAssertEqual(queued.code, -32009)
        XCTAssertEqual(queued.data, ["limit": "max_queued_jobs", "max": 3, "queued": 3])
    }
}
