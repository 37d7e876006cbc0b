import Foundation
import TestSupport
import XCTest

@testable import Orchestrator

/// Which job holds which workspace: the directory a path names, who keeps a new job out, and release.
final class WorkspaceClaimsTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var root: String!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory.path + "/ws", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: directory.path + "/alias", withDestinationPath: directory.path + "/ws")
        root = try XCTUnwrap(ToolBox.realPath(directory.path))
    }

    override func tearDown() {
        directory.remove()
    }

    /// Symlinks are resolved as far as the path exists; the part the tools will create is normalised.
    func testADirectoryIsNamedTheSameHoweverThePathSpellsIt() {
        let workspace = root + "/ws"
        for path in [directory.path + "/ws", directory.path + "/alias", directory.path + "/alias/.", directory.path + "//ws/new/.."] {
            XCTAssertEqual(WorkspaceClaims.resolve(path), workspace, path)
        }
        XCTAssertEqual(WorkspaceClaims.resolve(directory.path + "/alias/new/./deeper/../x"), workspace + "/new/x", "not there yet")
        XCTAssertEqual(WorkspaceClaims.resolve("/"), "/")
    }

    /// A job holds its directory against any other unless both share it; a released job holds nothing.
    func testAJobKeepsOthersOutUnlessBothShare() {
        let claims = WorkspaceClaims(daemonFiles: DaemonFiles(paths: []))
        claims.claim("/w", job: "A", shared: false)
        XCTAssertEqual(claims.holder(of: "/w", shared: false), "A")
        XCTAssertEqual(claims.holder(of: "/w", shared: true), "A", "A did not agree to share")
        XCTAssertNil(claims.holder(of: "/w/inner", shared: false), "another directory")
        claims.release(job: "A")
        XCTAssertNil(claims.holder(of: "/w", shared: false))

        claims.claim("/w", job: "B", shared: true)
        claims.claim("/w", job: "C", shared: true)
        XCTAssertNil(claims.holder(of: "/w", shared: true), "both share")
        XCTAssertEqual(claims.holder(of: "/w", shared: false), "B")
        claims.release(job: "B")
        XCTAssertEqual(claims.holder(of: "/w", shared: false), "C")
        claims.claim("/v", job: "C", shared: true)
        XCTAssertNil(claims.holder(of: "/w", shared: false), "a job holds one workspace: its last claim")
    }
}
