import Foundation
import XCTest

@testable import Orchestrator

/// The copies candidates work in: a real copy (contents, modes, symbolic links as links), a half-made
/// copy made again, a whole one kept, and a choice applied again after a crash at any point ending the
/// same.
final class CandidateWorkspaceTests: XCTestCase {
    private var root: String!
    private var workspace: String { root + "/ws" }
    private let fm = FileManager.default

    override func setUpWithError() throws {
        root = fm.temporaryDirectory.appendingPathComponent("agentd-candidates-\(UUID().uuidString)").path
        try fm.createDirectory(atPath: workspace + "/sub", withIntermediateDirectories: true)
        try write("keep.txt", "kept\n")
        try write("sub/tool.sh", "#!/bin/sh\n")
        try fm.setAttributes([.posixPermissions: 0o750], ofItemAtPath: workspace + "/sub/tool.sh")
        try fm.createSymbolicLink(atPath: workspace + "/link", withDestinationPath: "sub/tool.sh")
    }

    override func tearDownWithError() throws {
        try? CandidateWorkspace.remove(root)
    }

    private func write(_ path: String, _ text: String, in base: String? = nil) throws {
        try text.write(toFile: (base ?? workspace) + "/" + path, atomically: false, encoding: .utf8)
    }

    private func read(_ path: String, in base: String? = nil) throws -> String {
        try String(contentsOfFile: (base ?? workspace) + "/" + path, encoding: .utf8)
    }

    /// Every entry under `base`, relative, sorted.
    private func tree(_ base: String) -> [String] {
        (fm.subpaths(atPath: base) ?? []).sorted()
    }

    private var copy: String { CandidateWorkspace.path(beside: workspace, jobID: "J1", replan: 0, step: 1, attempt: 2, sample: 3) }

    func testACopyIsARealCopyBesideTheWorkspace() throws {
        XCTAssertEqual(copy, root + "/.ws.agentd-J1/r0-s1-a2-k3")
        try CandidateWorkspace.prepare(copy, from: workspace)
        XCTAssertEqual(tree(copy), tree(workspace))
        XCTAssertEqual(try read("keep.txt", in: copy), "kept\n")
        XCTAssertEqual(try fm.attributesOfItem(atPath: copy + "/sub/tool.sh")[.posixPermissions] as? Int, 0o750)
        XCTAssertEqual(try fm.destinationOfSymbolicLink(atPath: copy + "/link"), "sub/tool.sh", "a link stays a link")
        try write("keep.txt", "changed in the copy", in: copy)
        XCTAssertEqual(try read("keep.txt"), "kept\n", "the workspace is untouched")
    }

    func testAWholeCopyIsKeptAndAHalfMadeOneIsMadeAgain() throws {
        try CandidateWorkspace.prepare(copy, from: workspace)
        try write("work.txt", "a candidate's work", in: copy)
        try CandidateWorkspace.prepare(copy, from: workspace)
        XCTAssertEqual(try read("work.txt", in: copy), "a candidate's work", "a recovered candidate keeps what it did")

        let other = CandidateWorkspace.path(beside: workspace, jobID: "J1", replan: 0, step: 1, attempt: 2, sample: 4)
        try fm.createDirectory(atPath: other + ".partial", withIntermediateDirectories: true)
        try write("stale.txt", "half made", in: other + ".partial")
        try CandidateWorkspace.prepare(other, from: workspace)
        XCTAssertEqual(tree(other), tree(workspace), "made again from the workspace")
        XCTAssertFalse(fm.fileExists(atPath: other + ".partial"))
    }

    func testApplyingMakesTheWorkspaceTheCopyAndAgainChangesNothing() throws {
        try CandidateWorkspace.prepare(copy, from: workspace)
        try write("keep.txt", "rewritten", in: copy)
        try write("new.txt", "added", in: copy)
        try fm.removeItem(atPath: copy + "/link")
        try fm.removeItem(atPath: copy + "/sub/tool.sh")
        let inode = try fm.attributesOfItem(atPath: workspace)[.systemFileNumber] as? Int

        try CandidateWorkspace.apply(copy, to: workspace)
        XCTAssertEqual(tree(workspace), ["keep.txt", "new.txt", "sub"])
        XCTAssertEqual(try read("keep.txt"), "rewritten")
        XCTAssertEqual(try fm.attributesOfItem(atPath: workspace)[.systemFileNumber] as? Int, inode, "the same directory")
        XCTAssertFalse(fm.fileExists(atPath: copy), "the copy is gone")
        XCTAssertFalse(fm.fileExists(atPath: root + "/.ws.agentd-J1"), "and its job's directory, now empty")

        // Applied again (a recovered job replays its choice): nothing changes.
        try write("later.txt", "a later step's work")
        try CandidateWorkspace.apply(copy, to: workspace)
        XCTAssertEqual(tree(workspace), ["keep.txt", "later.txt", "new.txt", "sub"])
    }

    func testAChoiceInterruptedAfterItsSyncFinishesFromTheAppliedName() throws {
        try CandidateWorkspace.prepare(copy, from: workspace)
        try write("new.txt", "added", in: copy)
        // A crash after the copy was synced and renamed, before it was removed.
        try CandidateWorkspace.apply(copy, to: workspace)
        try fm.createDirectory(atPath: copy + ".applied/x", withIntermediateDirectories: true)
        try CandidateWorkspace.apply(copy, to: workspace)
        XCTAssertFalse(fm.fileExists(atPath: copy + ".applied"))
        XCTAssertEqual(try read("new.txt"), "added")
    }

    func testDiscardingKeepsTheStepsCopies() throws {
        let keep = CandidateWorkspace.path(beside: workspace, jobID: "J1", replan: 0, step: 10, attempt: 0, sample: 0)
        try CandidateWorkspace.prepare(copy, from: workspace)
        try CandidateWorkspace.prepare(keep, from: workspace)
        try CandidateWorkspace.discard(in: CandidateWorkspace.directory(beside: workspace, jobID: "J1"), except: "r0-s10-")
        XCTAssertFalse(fm.fileExists(atPath: copy))
        XCTAssertTrue(fm.fileExists(atPath: keep))
        try CandidateWorkspace.discard([keep])
        XCTAssertFalse(fm.fileExists(atPath: root + "/.ws.agentd-J1"))
    }
}
