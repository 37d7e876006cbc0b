import XCTest

@testable import Orchestrator
@testable import Runtime

/// A command critic's feedback: what the command printed, stdout then stderr, capped at
/// `CriticCommand.feedbackCap` bytes on a character boundary; a short account when it printed nothing.
final class CriticCommandTests: XCTestCase {
    private func result(status: Int64 = 0, stdout: String = "", stderr: String = "", timedOut: Bool = false) -> ProcessResult {
        ProcessResult(
            exitStatus: status, termSignal: 0, stdout: Array(stdout.utf8), stderr: Array(stderr.utf8), stdoutTruncated: false,
            stderrTruncated: false, timedOut: timedOut, cancelled: false)
    }

    func testTheFeedbackIsStdoutThenStderr() {
        XCTAssertEqual(
            CriticCommand.feedback(result(status: 1, stdout: "checked 3 files\n", stderr: "b.py:2: missing term\n"), timeoutSeconds: 5),
            "checked 3 files\nb.py:2: missing term\n")
    }

    func testAnEmptyOutputSaysHowTheCommandEnded() {
        XCTAssertEqual(CriticCommand.feedback(result(stdout: " \n"), timeoutSeconds: 5), "the critic command passed (exit status 0)")
        XCTAssertEqual(CriticCommand.feedback(result(status: 2), timeoutSeconds: 5), "the critic command failed: exit status 2")
        XCTAssertEqual(
            CriticCommand.feedback(result(stdout: "partial\n", timedOut: true), timeoutSeconds: 5),
            "partial\n\n[the critic command failed: timed out after 5.0s]")
    }

    func testALongOutputIsCutOnACharacterBoundaryAndSaysSo() {
        let long = String(repeating: "a", count: CriticCommand.feedbackCap - 1) + "é" + String(repeating: "b", count: 100)
        let feedback = CriticCommand.feedback(result(status: 1, stdout: long), timeoutSeconds: 5)
        XCTAssertEqual(feedback, String(repeating: "a", count: CriticCommand.feedbackCap - 1) + "\n[output cut at 8192 bytes]")
    }
}
