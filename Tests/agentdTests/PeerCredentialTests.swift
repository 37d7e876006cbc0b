import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Who may connect: a second real Unix user is refused, by the socket's mode and — even when the
/// socket and its directory are opened to everyone — by the daemon's SO_PEERCRED check.
final class PeerCredentialTests: EndToEndTestCase {
    private let otherUser = "agentd-e2e-peer"

    /// Creates the second user (tests run as root in CI); skips where that is impossible.
    private func ensureOtherUser() throws {
        guard geteuid() == 0 else { throw XCTSkip("creating a second Unix user needs root") }
        if getpwnam(otherUser) == nil {
            let add = Process()
            add.executableURL = URL(fileURLWithPath: "/usr/sbin/useradd")
            add.arguments = ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", otherUser]
            try add.run()
            add.waitUntilExit()
            guard add.terminationStatus == 0 || getpwnam(otherUser) != nil else { throw XCTSkip("useradd failed") }
        }
    }

    /// `agentd ARGS` run as the other user (`runuser`), with the output captured.
    private func runAsOther(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let out = harness.dir + "/other-\(UUID().uuidString.prefix(6)).out"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        chmod(out, 0o666)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        process.arguments = ["-u", otherUser, "--", harness.agentd] + arguments
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        XCTAssertTrue(waitUntil(timeout: 30) { !process.isRunning }, "the client finished")
        return (process.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    /// Lets every user reach the binary and the harness directory (as a misconfigured install would).
    private func openTheWay() {
        var path = URL(fileURLWithPath: harness.agentd).deletingLastPathComponent()
        while path.path != "/" {
            var info = stat()
            if stat(path.path, &info) == 0, info.st_mode & 0o005 != 0o005 { chmod(path.path, info.st_mode | 0o005) }
            path.deleteLastPathComponent()
        }
        chmod(harness.dir, 0o755)
    }

    func testASecondUserIsRefused() throws {
        try ensureOtherUser()
        try harness.start()
        openTheWay()
        var info = stat()
        XCTAssertEqual(stat(harness.socketPath, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600, "the socket is the daemon user's alone")
        let blocked = try runAsOther(["status", "--socket", harness.socketPath])
        XCTAssertNotEqual(blocked.status, 0, blocked.output)
        XCTAssertTrue(blocked.output.lowercased().contains("permission denied"), blocked.output)

        // Opened to everyone, the socket still lets only the daemon's user talk to it.
        chmod(harness.socketPath, 0o666)
        let refused = try runAsOther(["status", "--socket", harness.socketPath])
        XCTAssertNotEqual(refused.status, 0, refused.output)
        XCTAssertTrue(refused.output.contains("may not use this daemon"), "the daemon's refusal is shown: \(refused.output)")
        XCTAssertNotNil(try harness.rpc("daemon.status")["pid"]?.intValue, "the daemon's own user is served")
    }

    func testAnAllowedGroupMayConnect() throws {
        try ensureOtherUser()
        guard let entry = getpwnam(otherUser), let group = getgrgid(entry.pointee.pw_gid), let name = group.pointee.gr_name else {
            throw XCTSkip("the other user has no group")
        }
        try harness.start(extraArguments: ["--allow-group", String(cString: name)])
        openTheWay()
        var info = stat()
        XCTAssertEqual(stat(harness.socketPath, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o660)
        XCTAssertEqual(info.st_gid, entry.pointee.pw_gid)
        let allowed = try runAsOther(["status", "--socket", harness.socketPath])
        XCTAssertEqual(allowed.status, 0, allowed.output)
        XCTAssertTrue(allowed.output.contains("accepting jobs: yes"), allowed.output)
    }
}
