import Foundation
import XCTest

/// The fuzz target's corpus in the normal test run: every seed and every crash the fuzzer ever found
/// (`Tests/Fuzz/corpus`) replays through the parsers without a crash. The fuzzing itself is libFuzzer's,
/// `scripts/fuzz.sh` (CI runs it for 20 seconds after the suite).
final class FuzzTests: EndToEndTestCase {
    private func fuzzer() throws -> String {
        let path = URL(fileURLWithPath: harness.agentd).deletingLastPathComponent().appendingPathComponent("agentd-fuzz").path
        guard FileManager.default.isExecutableFile(atPath: path) else { throw HarnessError("agentd-fuzz is not built at \(path)") }
        return path
    }

    func testEveryCorpusInputReplaysWithoutACrash() throws {
        let corpus = Locations.repoRoot + "/Tests/Fuzz/corpus"
        let inputs = try FileManager.default.contentsOfDirectory(atPath: corpus)
        let out = harness.dir + "/fuzz.out"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try fuzzer())
        process.arguments = [corpus]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        // The replay names each input before running it: after a crash, the last name is the culprit.
        let output = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        XCTAssertEqual(process.terminationReason, .exit, output)
        XCTAssertEqual(process.terminationStatus, 0, output)
        XCTAssertTrue(output.contains("agentd-fuzz: \(inputs.count) inputs replayed, no crash"), output)
    }
}
