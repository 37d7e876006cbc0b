import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Who may connect: a second real Unix user is refused, by the socket's mode and — even when the
/// socket and its directory are opened to everyone — by the daemon's SO_PEERCRED check.
final class PeerCredentialTests: EndToEndTestCase {
    func testASecondUserIsRefused() throws {
        try OtherUser.ensure()
        try harness.start()
        OtherUser.openTheWay(harness)
        var info = stat()
        XCTAssertEqual(stat(harness.socketPath, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600, "the socket is the daemon user's alone")
        let blocked = try OtherUser.run(harness, ["status", "--socket", harness.socketPath])
        XCTAssertNotEqual(blocked.status, 0, blocked.output)
        XCTAssertTrue(blocked.output.lowercased().contains("permission denied"), blocked.output)

        // Opened to everyone, the socket still lets only the daemon's user talk to it.
        chmod(harness.socketPath, 0o666)
        let refused = try OtherUser.run(harness, ["status", "--socket", harness.socketPath])
        XCTAssertNotEqual(refused.status, 0, refused.output)
        XCTAssertTrue(refused.output.contains("may not use this daemon"), "the daemon's refusal is shown: \(refused.output)")
        XCTAssertNotNil(try harness.rpc("daemon.status")["pid"]?.intValue, "the daemon's own user is served")
    }

    func testAnAllowedGroupMayConnect() throws {
        try OtherUser.ensure()
        let entry = try XCTUnwrap(getpwnam(OtherUser.name))
        try harness.start(extraArguments: ["--allow-group", try OtherUser.groupName()])
        OtherUser.openTheWay(harness)
        var info = stat()
        XCTAssertEqual(stat(harness.socketPath, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o660)
        XCTAssertEqual(info.st_gid, entry.pointee.pw_gid)
        let allowed = try OtherUser.run(harness, ["status", "--socket", harness.socketPath])
        XCTAssertEqual(allowed.status, 0, allowed.output)
        XCTAssertTrue(allowed.output.contains("accepting jobs: yes"), allowed.output)
    }
}
