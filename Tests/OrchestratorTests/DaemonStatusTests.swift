import TestSupport
import XCTest

@testable import Orchestrator
@testable import Store

/// `daemon.status` encodes its figures in exactly the documented shape and member order.
final class DaemonStatusTests: XCTestCase {
    func testEncodingKeepsTheDocumentedShapeAndOrder() {
        var stats = StoreWriter.Stats()
        stats.commits = 31
        stats.events = 30
        let figures = Engine.Figures(
            accepting: true, uptimeMillis: 3901, running: 2, queued: 1, watchers: 0, jobs: [.succeeded: 4, .running: 2],
            storePath: "/d/a.db", store: stats, storageFault: nil, stoppedJobs: 0)
        let status = DaemonStatus(
            engine: figures, version: "0.1.0", pid: 27154, socket: "/d/s", config: ["generation": 1], openConnections: 3,
            pausedConnections: 1)
        XCTAssertEqual(
            status.json.encoded,
            #"{"accepting":true,"uptime_ms":3901,"running":2,"queued":1,"watchers":0,"#
                + #""jobs":{"queued":0,"running":2,"awaiting_approval":0,"succeeded":4,"failed":0,"cancelled":0},"#
                + #""store":{"path":"/d/a.db","commits":31,"events":30,"failures":0,"last_error":null},"#
                + #""storage":{"state":"ok","error":null,"since":null,"stopped_jobs":0},"#
                + #""version":"0.1.0","protocol_version":1,"pid":27154,"socket":"/d/s","config":{"generation":1},"#
                + #""connections":{"open":3,"paused":1,"cut_off":0}}"#)
        XCTAssertEqual(try DaemonStatus(json: status.json), status, "a client decodes what the server encodes")
        XCTAssertThrowsError(try DaemonStatus(json: status.json.setting("store", ["path": "/d/a.db"]))) { error in
            XCTAssertEqual("\(error)", "status: 'store.commits' is missing or has the wrong type")
        }
    }
}
