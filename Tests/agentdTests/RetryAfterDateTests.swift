import Foundation
import Store
import XCTest

/// `Retry-After` given as an HTTP date (`Sun, 06 Dec 2026 05:00:00 GMT`) on a 429 or a 503: the
/// daemon sends the retry no earlier than that date, though its own backoff (50 ms) would retry at
/// once. The times compared are the fake server's: the date it sent and when the retry arrived.
final class RetryAfterDateTests: EndToEndTestCase {
    func testTheRetryWaitsForTheDateRetryAfterNames() throws {
        let server = try FakeModelServer(directory: harness.dir)
        try harness.start()
        for mode in ["429-date", "503-date"] {
            let model = "\(mode):wait"
            let plan = try harness.preparePlan("openai-actor.yaml", values: ["BASE_URL": server.baseURL, "MODEL": model, "RETRIES": "2"])
            let id = try submit(plan)
            let job = try harness.waitForJob(id, timeout: 60)
            let events = try harness.events(id)
            XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(mode): \(dump(events))")
            let completed = try XCTUnwrap(self.events(events, kind: "call.completed", role: "actor").first, dump(events))
            XCTAssertEqual(completed["payload"]?["http_attempts"]?.intValue, 2, "\(mode): refused once, then answered")

            let stats = try server.stats()
            let dates = stats["retry_after_dates"]?[model]?.arrayValue?.compactMap(\.doubleValue) ?? []
            let arrivals = stats["arrivals_unix"]?[model]?.arrayValue?.compactMap(\.doubleValue) ?? []
            XCTAssertEqual(dates.count, 1, "\(mode): one Retry-After date was sent: \(stats.encoded)")
            XCTAssertEqual(arrivals.count, 2, "\(mode): the request and its retry: \(stats.encoded)")
            guard let date = dates.first, arrivals.count == 2 else { continue }
            XCTAssertLessThan(arrivals[0], date, "\(mode): the date lay ahead when it was sent")
            XCTAssertGreaterThanOrEqual(arrivals[1], date, "\(mode): the retry came no earlier than the date Retry-After named")
        }
    }
}
