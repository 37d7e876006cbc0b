import Agents
import Foundation
import TestSupport
import XCTest

@testable import Orchestrator

/// Limits per `openai` endpoint: the daemon configuration's win over the plans', and a reload
/// applies to requests already waiting.
final class EndpointLimitsTests: XCTestCase {
    private func spec(maxConcurrent: Int, requestsPerMinute: Int? = nil) -> OpenAISpec {
        var spec = OpenAISpec(model: "m")
        spec.baseURL = "http://127.0.0.1:9/v1/"
        spec.maxConcurrent = maxConcurrent
        spec.requestsPerMinute = requestsPerMinute
        return spec
    }

    func testTheConfiguredLimitWinsAndAReloadAdmitsWaitingRequestsAtOnce() async throws {
        let loop = startedLoop()
        let spec = self.spec(maxConcurrent: 8)
        try await loop.run {
            let endpoints = ModelEndpoints(loop: loop)
            endpoints.configure(["http://127.0.0.1:9/v1": EndpointLimits(maxConcurrent: 1)])
            let gate = endpoints.gate(for: "http://127.0.0.1:9/v1/", spec: spec)
            XCTAssertEqual(gate.limit, 1, "the configuration's max_concurrent, not the plan's 8")
            await gate.acquire()
            let admitted = LoopBox(false)
            let waiter = Task(executorPreference: loop) {
                await gate.acquire()
                admitted.value = true
            }
            for _ in 0..<1000 where gate.waitingCount == 0 { await loop.sleep(milliseconds: 1) }
            XCTAssertEqual(gate.waitingCount, 1, "the second request waits")
            XCTAssertFalse(admitted.value)

            endpoints.configure(["http://127.0.0.1:9/v1": EndpointLimits(maxConcurrent: 2)])
            for _ in 0..<1000 where !admitted.value { await loop.sleep(milliseconds: 1) }
            XCTAssertTrue(admitted.value, "a raised limit lets the waiting request in without a release")
            await waiter.value
            XCTAssertEqual(gate.inUse, 2)

            endpoints.configure([:])
            XCTAssertEqual(gate.limit, 8, "without configured limits the plans' apply again")
            gate.release()
            gate.release()
            endpoints.close()
        }
        loop.finish()
    }

    func testAConfiguredBudgetWinsOverThePlans() async throws {
        let loop = startedLoop()
        let spec = self.spec(maxConcurrent: 4, requestsPerMinute: 1000)
        let smaller = self.spec(maxConcurrent: 4, requestsPerMinute: 10)
        try await loop.run {
            let endpoints = ModelEndpoints(loop: loop)
            let gate = endpoints.gate(for: "http://127.0.0.1:9/v1", spec: spec)
            XCTAssertEqual(gate.budget.requests, 1000)
            XCTAssertNil(gate.budget.tokens)
            endpoints.configure(["http://127.0.0.1:9/v1": EndpointLimits(requestsPerMinute: 2, tokensPerMinute: 500)])
            XCTAssertEqual(gate.budget.requests, 2)
            XCTAssertEqual(gate.budget.tokens, 500)
            XCTAssertEqual(gate.limit, 4, "max_concurrent left out keeps the plan's")
            _ = endpoints.gate(for: "http://127.0.0.1:9/v1", spec: smaller)
            XCTAssertEqual(gate.budget.requests, 2, "a plan's smaller budget does not override the configuration")
            endpoints.configure([:])
            XCTAssertEqual(gate.budget.requests, 10, "the plans' smallest again")
            endpoints.close()
        }
        loop.finish()
    }
}
