import Foundation
import Store
import XCTest

/// What a client outside agentd relies on in every reply: its id comes back as it wrote it, a NUL is
/// refused rather than cut, a watch's events name the watch, error replies follow one rule for a null
/// id, and a large history reaches a client that reads it however large it is.
final class WireFidelityTests: EndToEndTestCase {
    /// The text of a reply line's `id`, as it appears between `"id":` and the next member.
    private func idText(_ line: [UInt8]) -> String {
        let text = String(decoding: line, as: UTF8.self)
        guard let start = text.range(of: #""id":"#)?.upperBound,
            let end = text.range(of: #","result""#, range: start..<text.endIndex)?.lowerBound
                ?? text.range(of: #","error""#, range: start..<text.endIndex)?.lowerBound
        else { return "(no id in \(text.prefix(200)))" }
        return String(text[start..<end])
    }

    /// Ids come back byte for byte: numbers a `Double` would change, exponents, escapes in strings.
    func testRequestIDsAreEchoedByteForByte() throws {
        try harness.start()
        let connection = try harness.connect()
        let ids = [
            "9007199254740993", "1e2", "-0", "1.50", "12345678901234567890123", "\"a\\u0041\\/b\"", "\"plain\"", "null",
            "1E+2",
        ]
        for id in ids {
            try connection.send(line: #"{"jsonrpc":"2.0","id":\#(id),"method":"job.list","params":{"limit":1}}"#)
            XCTAssertEqual(idText(try connection.readLine()), id, "a result echoes the id as sent")
            try connection.send(line: #"{"jsonrpc":"2.0","id":\#(id),"method":"job.get","params":{"id":"NOSUCH"}}"#)
            XCTAssertEqual(idText(try connection.readLine()), id, "an error echoes the id as sent")
        }
        // White space around the id is not part of it.
        try connection.send(line: #"{"jsonrpc":"2.0","id":  7e0 ,"method":"daemon.status"}"#)
        XCTAssertEqual(idText(try connection.readLine()), "7e0")
    }

    /// U+0000 anywhere in any method's params is refused with -32602 naming the field, never cut.
    func testStringsWithNULAreRefusedNamingTheField() throws {
        try harness.start()
        let plan = Locations.shippedPlans + "/w1.yaml"
        let cases: [(String, JSON, String)] = [
            ("job.submit", ["plan_path": .string(plan), "goal": "nul\u{0}byte"], "goal"),
            ("job.submit", ["plan_path": .string(plan), "inputs": ["deep": ["list": ["ok", "a\u{0}"]]]], "inputs.deep.list[1]"),
            ("job.submit", ["plan_path": .string(plan), "inputs": ["k\u{0}ey": "v"]], "inputs.k\u{0}ey"),
            ("job.get", ["id": "01ABC\u{0}"], "id"),
            ("job.list", ["status": "queued\u{0}"], "status"),
            ("job.transcript", ["id": "x", "format": "md\u{0}"], "format"),
        ]
        let connection = try harness.connect()
        for (method, params, field) in cases {
            let reply = try connection.request(method, params)
            XCTAssertEqual(reply["error"]?["code"]?.intValue, -32602, "\(method) \(field): \(reply.encoded)")
            let message = reply["error"]?["message"]?.stringValue ?? ""
            XCTAssertTrue(message.contains("'\(field)' contains U+0000"), "\(method): \(message)")
        }
        XCTAssertEqual(try harness.rpc("job.list")["jobs"]?.arrayValue?.count, 0, "no job was made")
        // The same goal without the NUL is taken whole.
        let job = try connection.call("job.submit", ["plan_path": .string(plan), "goal": "nul byte"])
        XCTAssertEqual(job["goal"]?.stringValue, "nul byte")
    }

    /// Each `job.event` names the watch it belongs to (its request id, as sent); two watches on one
    /// connection are told apart, and a watch sent as a notification streams events without the member.
    func testJobEventsCarryTheWatchID() throws {
        try harness.start()
        let submit = try harness.cli("submit", Locations.shippedPlans + "/w1.yaml", "--wait", "--json")
        XCTAssertEqual(submit.status, 0, "\(submit)")
        let id = try XCTUnwrap(try parseJSON(submit.stdout)["id"]?.stringValue)
        let connection = try harness.connect()
        try connection.send(line: #"{"jsonrpc":"2.0","id":"w-1","method":"job.watch","params":{"id":"\#(id)","since":20}}"#)
        try connection.send(line: #"{"jsonrpc":"2.0","id":2.50,"method":"job.watch","params":{"id":"\#(id)","since":25}}"#)
        try connection.send(line: #"{"jsonrpc":"2.0","method":"job.watch","params":{"id":"\#(id)","since":28}}"#)
        let last = try XCTUnwrap(try harness.events(id).last?["seq"]?.intValue)
        var watches: [String: [Int]] = [:]
        var results = 0
        while results < 2 || watches["(none)"]?.last != last {
            let line = try connection.readLine()
            let message = try JSON.parse(line)
            guard message["method"]?.stringValue == "job.event" else {
                results += 1
                continue
            }
            let text = String(decoding: line, as: UTF8.self)
            let watch = text.range(of: #","watch":"#, options: .backwards).map { String(text[$0.upperBound...].dropLast(2)) } ?? "(none)"
            watches[watch, default: []].append(message["params"]?["seq"]?.intValue ?? -1)
            XCTAssertEqual(message["params"]?["job"]?.stringValue, id)
        }
        XCTAssertEqual(watches["\"w-1\""], Array(21...last), "the first watch's events, named by its id")
        XCTAssertEqual(watches["2.50"], Array(26...last), "the second watch's, its id as written")
        XCTAssertEqual(watches["(none)"], Array(29...last), "a watch sent as a notification: events without 'watch'")
    }

    /// The one rule for ids in error replies: the request's id whenever it could be read (also when
    /// `jsonrpc` or `method` is wrong); null when it could not; a frame without an id that is a valid
    /// request is a notification and gets no reply, even for an unknown method or bad params.
    func testErrorReplyIDRule() throws {
        try harness.start()
        let connection = try harness.connect()
        let frames: [(String, Int, String)] = [
            (#"{"jsonrpc":"1.0","id":9,"method":"job.list"}"#, -32600, "9"),
            (#"{"jsonrpc":"2.0","id":"m","method":5}"#, -32600, #""m""#),
            (#"{"jsonrpc":"2.0","id":null,"method":"job.nope"}"#, -32601, "null"),
            (#"{"jsonrpc":"2.0","id":3,"method":"job.list","params":[1]}"#, -32602, "3"),
            (#"{"jsonrpc":"2.0","id":[3],"method":"job.list"}"#, -32600, "null"),
            (#"{"jsonrpc":"1.0","method":"job.list"}"#, -32600, "null"),
            (#"{"jsonrpc":"2.0","method":7}"#, -32600, "null"),
            (#"{nope"#, -32700, "null"),
        ]
        let silent = [
            #"{"jsonrpc":"2.0","method":"job.nope"}"#, #"{"jsonrpc":"2.0","method":"job.list","params":[1]}"#,
            #"{"jsonrpc":"2.0","method":"job.get","params":{}}"#,
        ]
        for (frame, code, id) in frames {
            // A notification that must get no reply goes first: a reply to it would be read here instead.
            for note in silent { try connection.send(line: note) }
            try connection.send(line: frame)
            let line = try connection.readLine()
            let reply = try JSON.parse(line)
            XCTAssertEqual(reply["error"]?["code"]?.intValue, code, "\(frame): \(reply.encoded)")
            XCTAssertEqual(idText(line), id, "\(frame): \(reply.encoded)")
        }
        try connection.send(line: #"{"jsonrpc":"2.0","id":"last","method":"daemon.status"}"#)
        XCTAssertEqual(idText(try connection.readLine()), #""last""#, "no reply to any notification came before")
    }
}
