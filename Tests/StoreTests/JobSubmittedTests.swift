import XCTest

@testable import Store

final class JobSubmittedTests: XCTestCase {
    func testAJobRecordedBeforeTheLaterMembersDecodes() throws {
        // The first release wrote only these three.
        let submitted = try JobSubmitted(payload: ["plan": "w1", "goal": "g", "inputs": ["n": 1]])
        XCTAssertEqual(submitted, JobSubmitted(plan: "w1", goal: "g", inputs: ["n": 1]))
        XCTAssertNil(submitted.planSHA256)
        XCTAssertNil(submitted.workspace)
    }

    func testEveryMemberIsStoredInItsOneOrder() throws {
        let submitted = JobSubmitted(
            plan: "w1", goal: "g", inputs: [:], idempotencyKey: "k", submitterUID: 1001, workspace: "/w", planSHA256: "p",
            jobSHA256: "j")
        let text =
            #"{"plan":"w1","goal":"g","inputs":{},"idempotency_key":"k","submitter_uid":1001,"workspace":"/w","plan_sha256":"p","job_sha256":"j"}"#
        XCTAssertEqual(submitted.json.encoded, text)
        XCTAssertEqual(try JobSubmitted(payload: try JSON.parse(text)), submitted)
        // The store writer's digests land where the typed value writes them.
        let committed = JobCommitment.committing(JobSubmitted(plan: "w1", goal: "g", inputs: [:]).json, to: (plan: "p", job: "j"))
        XCTAssertEqual(
            try JobSubmitted(payload: committed),
            JobSubmitted(plan: "w1", goal: "g", inputs: [:], format: RecordFormat.current, planSHA256: "p", jobSHA256: "j"))
    }

    func testAWrongShapeNamesTheKindAndTheField() {
        XCTAssertThrowsError(try JobSubmitted(payload: ["plan": "w1", "goal": "g", "inputs": [:], "submitter_uid": "root"])) {
            XCTAssertEqual("\($0)", "a job.submitted event's payload member submitter_uid is a string, not an integer")
        }
        XCTAssertThrowsError(try JobSubmitted(payload: ["plan": "w1", "goal": "g"])) {
            XCTAssertEqual("\($0)", "a job.submitted event's payload member inputs is missing")
        }
        // The chain check names a job.submitted payload of the wrong shape instead of passing it.
        let problem = JobCommitment.problem(submitted: ["goal": "g", "inputs": [:]], plan: "{}", goal: "g", inputs: "{}", cwd: nil)
        XCTAssertEqual(problem, "a job.submitted event's payload member plan is missing")
    }
}
