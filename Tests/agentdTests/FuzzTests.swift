import Foundation
import XCTest

/// The fuzz target in the normal test run: its corpus (seeds and every crash ever found) replays
/// without a crash, and a short mutation run finds none.
final class FuzzTests: EndToEndTestCase {
    private func fuzzer() throws -> String {
        let path = URL(fileURLWithPath: harness.agentd).deletingLastPathComponent().appendingPathComponent("agentd-fuzz").path
        guard FileManager.default.isExecutableFile(atPath: path) else { throw HarnessError("agentd-fuzz is not built at \(path)") }
        return path
    }

    private func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let out = harness.dir + "/fuzz.out"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try fuzzer())
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: harness.dir)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        process.waitUntilExit()
        let crash = harness.dir + "/fuzz-crash-input"
        if let data = FileManager.default.contents(atPath: crash) {
            XCTFail("a crashing input (keep it in Tests/Fuzz/corpus once fixed): \(Array(data))")
        }
        return (process.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    func testTheCorpusReplaysAndAShortRunFindsNoCrash() throws {
        let corpus = Locations.repoRoot + "/Tests/Fuzz/corpus"
        let replay = try run([corpus])
        XCTAssertEqual(replay.status, 0, replay.output)
        XCTAssertTrue(replay.output.contains("inputs replayed"), replay.output)
        let fuzz = try run(["--fuzz", "5", "--seed", "\(Int.random(in: 1...1_000_000))", corpus])
        XCTAssertEqual(fuzz.status, 0, fuzz.output)
        XCTAssertTrue(fuzz.output.contains("no crash"), fuzz.output)
    }
}
