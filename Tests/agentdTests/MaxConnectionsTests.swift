import Foundation
import Store
import XCTest

/// `max_connections` from the configuration file: that many connections are served at once, the
/// next one is sent `-32007` and closed (docs/config.md), and the daemon keeps serving the others
/// and takes a new connection once one has closed.
final class MaxConnectionsTests: EndToEndTestCase {
    private let limit = 3

    /// Connections open at the daemon, this one included (`daemon.status`).
    private func openConnections(_ connection: WireConnection) throws -> Int? {
        try connection.call("daemon.status")["connections"]?["open"]?.intValue
    }

    func testTheConnectionBeyondMaxConnectionsIsRefusedAndTheOthersAreStillServed() throws {
        let config = harness.dir + "/agentd.yaml"
        try "max_connections: \(limit)\n".write(toFile: config, atomically: true, encoding: .utf8)
        try harness.start(extraArguments: ["--config", config])
        // The harness's own connections (its readiness checks) are closed: only the asking one is open.
        XCTAssertTrue(
            waitUntil(timeout: 30) { (try? openConnections(harness.connect())) == 1 },
            "the daemon has let go of earlier connections")

        var held: [WireConnection] = []
        for n in 1...limit {
            let connection = try harness.connect()
            XCTAssertEqual(try openConnections(connection), n, "connection \(n) of \(limit) is served")
            held.append(connection)
        }

        let refused = try harness.connect()
        let reply = try refused.readMessage(timeout: 30)
        XCTAssertEqual(reply["error"]?["code"]?.intValue, -32007, "connection \(limit + 1) is refused: \(reply.encoded)")
        XCTAssertEqual(reply["error"]?["message"]?.stringValue, "too many clients connected", reply.encoded)
        XCTAssertTrue(reply["id"]?.isNull ?? false, reply.encoded)
        XCTAssertThrowsError(try refused.readMessage(timeout: 30), "and closed") { error in
            XCTAssertTrue("\(error)".contains("closed the connection"), "\(error)")
        }

        // The connections within the limit are still served, and the daemon still reports the limit.
        for (n, connection) in held.enumerated() {
            XCTAssertEqual(try openConnections(connection), limit, "connection \(n + 1) is still served")
        }
        XCTAssertEqual(try held[0].call("daemon.status")["config"]?["max_connections"]?.intValue, limit)

        // Once one closes, a new connection is served again.
        held.removeLast().close()
        XCTAssertTrue(
            waitUntil(timeout: 30) { (try? openConnections(harness.connect())) == limit },
            "a connection is served again once one has closed")
    }
}
