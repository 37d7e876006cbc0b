import Foundation
import TestSupport
import XCTest

@testable import Orchestrator

/// A call's input directory is made under the daemon's pid, and the next daemon removes what a killed
/// daemon left, never a running daemon's.
final class CallInputsTests: XCTestCase {
    func testTheSweepRemovesADeadDaemonsDirectoriesOnly() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        // A pid that ran and is gone: a child reaped before the sweep.
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let dead = dir.path + "/agentd-call-\(child.processIdentifier)-a1b2c3"
        let running = dir.path + "/agentd-call-\(getppid())-d4e5f6"
        let own = dir.path + "/agentd-call-\(getpid())-g7h8i9"
        let other = dir.path + "/agentd-call-notapid"
        for path in [dead, running, own, other] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            XCTAssertTrue(FileManager.default.createFile(atPath: path + "/step-output", contents: Data("x".utf8)))
        }
        CallInputs.sweep(in: dir.path)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dead), "a dead daemon's call directory is removed")
        for path in [running, own, other] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: path + "/step-output"), "left alone: \(path)")
        }
    }

    func testADirectoryIsNamedAfterTheDaemonAndRemovedWhenTheCallEnds() async throws {
        let inputs = try await CallInputs.make([("step-output", "the draft")]).get()
        XCTAssertTrue(
            (inputs.directory as NSString).lastPathComponent.hasPrefix("agentd-call-\(getpid())-"), inputs.directory)
        XCTAssertEqual(try String(contentsOfFile: inputs.path("step-output"), encoding: .utf8), "the draft")
        await inputs.remove()
        XCTAssertFalse(FileManager.default.fileExists(atPath: inputs.directory))
    }
}
