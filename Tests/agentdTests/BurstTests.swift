import Foundation
import Store
import XCTest

/// Bursts of requests pipelined on one connection: every request gets its answer.
///
/// A burst makes many submissions wait on the same thing at once (the first load of a plan file,
/// the first write of an idempotency key); the ones that arrive just as that wait ends must still be
/// answered. One job runs at a time and its actor sleeps, so the burst measures admission only.
final class BurstTests: EndToEndTestCase {
    private func submitBurst(_ count: Int, key: (Int) -> String?) throws -> [Int: JSON] {
        try harness.start(extraArguments: ["--max-running", "1"])
        let plan = try harness.preparePlan("cancel-sleep.yaml")
        let connection = try harness.connect()
        var frames: [UInt8] = []
        for i in 0..<count {
            var params: [(String, JSON)] = [("plan_path", .string(plan)), ("goal", .string("burst \(i)"))]
            if let key = key(i) { params.append(("idempotency_key", .string(key))) }
            let request: JSON = .object([("jsonrpc", "2.0"), ("id", .int(i)), ("method", "job.submit"), ("params", .object(params))])
            frames += Array(request.encoded.utf8) + [0x0A]
        }
        try connection.send(raw: frames)
        var replies: [Int: JSON] = [:]
        while replies.count < count {
            let reply: JSON
            do {
                reply = try connection.readMessage(timeout: 20)
            } catch {
                let missing = (0..<count).filter { replies[$0] == nil }
                XCTFail("\(missing.count) of \(count) submissions got no answer (first: \(missing.prefix(5))): \(error)")
                throw error
            }
            let id = try XCTUnwrap(reply["id"]?.intValue, "a reply without an id: \(reply.encoded)")
            XCTAssertNil(replies[id], "two replies for request \(id)")
            XCTAssertNil(reply["error"], "request \(id) failed: \(reply.encoded)")
            replies[id] = reply["result"]
        }
        XCTAssertNotNil(try connection.call("daemon.status")["pid"]?.intValue, "the daemon still answers")
        return replies
    }

    func testEverySubmissionOfABurstIsAnswered() throws {
        let replies = try submitBurst(3000) { _ in nil }
        let ids = Set(replies.values.compactMap { $0["id"]?.stringValue })
        XCTAssertEqual(ids.count, 3000, "every submission made its own job")
    }

    func testABurstOfRepeatedIdempotencyKeysMakesOneJobPerKey() throws {
        let keys = 50
        let replies = try submitBurst(3000) { "key-\($0 % keys)" }
        var jobByKey: [Int: String] = [:]
        for (i, result) in replies {
            let id = try XCTUnwrap(result["id"]?.stringValue, "submission \(i) returned no job id")
            if let first = jobByKey[i % keys] {
                XCTAssertEqual(id, first, "submissions with key-\(i % keys) returned different jobs")
            } else {
                jobByKey[i % keys] = id
            }
        }
        XCTAssertEqual(Set(jobByKey.values).count, keys)
        let listed = try harness.rpc("job.list", ["limit": 10_000])
        XCTAssertEqual(listed["jobs"]?.arrayValue?.count, keys, "the store holds one job per key")
    }
}
