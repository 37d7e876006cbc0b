import XCTest

@testable import Store

/// The record-format rule at the job's first event: format 1 is checked by its events alone, format 2
/// requires the row's digests, and a newer format is refused by name.
final class JobCommitmentTests: XCTestCase {
    private let row = (plan: "{}", goal: "g", inputs: "{}", cwd: "/w")

    private func problem(_ payload: JSON) -> String? {
        JobCommitment.problem(submitted: payload, plan: row.plan, goal: row.goal, inputs: row.inputs, cwd: row.cwd)
    }

    func testEachFormatIsCheckedAsItWasWritten() {
        let base: [(String, JSON)] = [("plan", "p"), ("goal", "g"), ("inputs", .object([]))]
        XCTAssertNil(problem(.object(base)), "format 1: no digests to check")
        let written = JobCommitment.committing(
            .object(base), to: JobCommitment.digests(plan: row.plan, goal: row.goal, inputs: row.inputs, cwd: row.cwd))
        XCTAssertEqual(written[RecordFormat.member]?.intValue, RecordFormat.current, "the writer stamps the current format")
        XCTAssertNil(problem(written), "the row matches its digests")
        XCTAssertEqual(RecordFormat.of(written), 4)
        for format in [2, 3, 4] {
            XCTAssertEqual(
                problem(.object(base + [(RecordFormat.member, .int(format))])),
                "the job's first event lacks the digests of its row that record format \(format) requires")
        }
        XCTAssertEqual(
            problem(.object(base + [(RecordFormat.member, 5)])),
            "the job was written in record format 5, newer than this agentd reads (up to 4)")
        XCTAssertEqual(JobCommitment.committing(written, to: ("x", "y")).encoded, written.encoded, "a recorded payload is kept as it is")
    }
}
