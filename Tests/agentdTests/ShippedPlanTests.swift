import Foundation
import Store
import XCTest

/// `plans/fix-tests.yaml` end to end on the fake OpenAI-compatible server: the plan loads, its roles
/// run over HTTP, and only the test suite (the verifier command) decides how the job ends.
final class ShippedPlanTests: EndToEndTestCase {
    private func runFixTests(fixed: Bool) throws -> (job: JSON, events: [JSON]) {
        let project = harness.dir + "/calc"
        try FileManager.default.copyItem(atPath: Locations.repoRoot + "/examples/fix-tests", toPath: project)
        if fixed {
            let code = try String(contentsOfFile: project + "/calc.py", encoding: .utf8)
                .replacingOccurrences(of: "(len(values) + 1)", with: "len(values)")
                .replacingOccurrences(of: "if value < low:\n        return high", with: "if value < low:\n        return low")
            try code.write(toFile: project + "/calc.py", atomically: true, encoding: .utf8)
        }
        let server = try FakeModelServer(directory: harness.dir)
        harness.daemonEnvironment = ["OPENAI_BASE_URL": server.baseURL, "OPENAI_MODEL": "ok:fix-tests", "OPENAI_API_KEY": ""]
        try harness.start()
        let result = try harness.cli(
            ["submit", Locations.shippedPlans + "/fix-tests.yaml", "--input", "dir=\(project)", "--wait", "--json"], timeout: 120)
        let job = try parseJSON(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "submit --wait --json")
        return (job, try harness.events(try XCTUnwrap(job["id"]?.stringValue)))
    }

    func testTheTestSuiteDecides() throws {
        let broken = try runFixTests(fixed: false)
        XCTAssertEqual(broken.job["status"]?.stringValue, "failed", dump(broken.events))
        XCTAssertTrue((broken.job["reason"]?.stringValue ?? "").contains("verifier rejected"), broken.job.encoded)
        let verifier = try XCTUnwrap(events(broken.events, kind: "call.completed", role: "verifier").last)
        XCTAssertTrue(
            (verifier["payload"]?["raw"]?["stderr"]?.stringValue ?? "").contains("FAILED (failures=2)"),
            "the test run's output is recorded: \(verifier.encoded)")
        let actor = events(broken.events, kind: "call.started", role: "actor").first?["payload"]?["request"]
        XCTAssertEqual(actor?["tools"]?.arrayValue?.count, 3, "the actor is offered its three tools")
    }

    func testAFixedSuiteSucceeds() throws {
        let fixed = try runFixTests(fixed: true)
        XCTAssertEqual(fixed.job["status"]?.stringValue, "succeeded", dump(fixed.events))
    }
}
