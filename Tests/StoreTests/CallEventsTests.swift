import XCTest

@testable import Store

final class CallEventsTests: XCTestCase {
    private func refusal(_ payload: JSON) -> String? {
        do {
            _ = try CallCompleted(payload: payload)
            XCTFail("expected \(payload.encoded) to be refused")
            return nil
        } catch {
            return error.description
        }
    }

    func testTheOldestShapeDecodes() throws {
        // What the first release wrote for an actor: no usage, cost, raw or outcome.
        let completed = try CallCompleted(payload: ["reply": "done", "duration_ms": 3.25])
        XCTAssertEqual(completed, CallCompleted(reply: "done", durationMs: 3.25))
        XCTAssertEqual(completed.json.encoded, #"{"reply":"done","duration_ms":3.25}"#)
    }

    func testAWrongShapeNamesTheKindAndTheField() {
        XCTAssertEqual(refusal(["duration_ms": 1]), "a call.completed event's payload member reply is missing")
        XCTAssertEqual(
            refusal(["reply": "", "duration_ms": 1, "usage": ["input_tokens": 1, "output_tokens": "2"]]),
            "a call.completed event's payload member usage.output_tokens is a string, not an integer")
        XCTAssertEqual(
            refusal(["reply": "", "duration_ms": 1, "steps": ["a", 2]]),
            "a call.completed event's payload member steps is an array, not an array of strings")
        XCTAssertEqual(refusal(["a", "b"]), "a call.completed event's payload is an array, not an object")
        XCTAssertThrowsError(try CallFailed(payload: ["error": "timeout", "duration_ms": 1])) { error in
            XCTAssertEqual("\(error)", "a call.failed event's payload member message is missing")
        }
    }
}
