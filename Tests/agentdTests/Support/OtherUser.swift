import Foundation
import Store
import TestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// A second real Unix user, for the tests of who may connect and of limits per client: created once
/// (tests run as root in CI); tests that need it skip where that is impossible (`Capability.root`).
enum OtherUser {
    static let name = "agentd-e2e-peer"

    /// Creates the user when it does not exist yet; throws `Capability.root.missing` where it cannot.
    static func ensure() throws {
        guard geteuid() == 0 else { throw Capability.root.missing("creating a second Unix user needs root") }
        if getpwnam(name) == nil {
            let add = Process()
            add.executableURL = URL(fileURLWithPath: "/usr/sbin/useradd")
            add.arguments = ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
            try add.run()
            add.waitUntilExit()
            guard add.terminationStatus == 0 || getpwnam(name) != nil else {
                throw Capability.root.missing("useradd \(name) failed (exit \(add.terminationStatus))")
            }
        }
    }

    /// The user's primary group's name.
    static func groupName() throws -> String {
        guard let entry = getpwnam(name), let group = getgrgid(entry.pointee.pw_gid), let groupName = group.pointee.gr_name else {
            throw Capability.root.missing("the user \(name) has no group")
        }
        return String(cString: groupName)
    }

    /// `agentd ARGS` run as the user (`runuser`), with its output captured.
    static func run(_ harness: DaemonHarness, _ arguments: [String], cwd: String? = nil) throws -> (status: Int32, output: String) {
        let out = harness.dir + "/other-\(UUID().uuidString.prefix(6)).out"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        chmod(out, 0o666)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        process.arguments = ["-u", name, "--", harness.agentd] + arguments
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        XCTAssertTrue(waitUntil(timeout: 30) { !process.isRunning }, "the other user's command finished")
        return (process.terminationStatus, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    /// One JSON-RPC request sent by the user over the daemon's socket (python3, standard library);
    /// returns the reply.
    static func rpc(_ harness: DaemonHarness, _ method: String, _ params: JSON) throws -> JSON {
        let request = JSON.object([("jsonrpc", "2.0"), ("id", 1), ("method", .string(method)), ("params", params)]).encoded
        let script = """
            import socket, sys
            s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(sys.argv[2].encode() + b"\\n")
            reply = b""
            while not reply.endswith(b"\\n"):
                chunk = s.recv(65536)
                if not chunk: break
                reply += chunk
            print(reply.decode().strip())
            """
        let out = harness.dir + "/other-rpc-\(UUID().uuidString.prefix(6)).out"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        chmod(out, 0o666)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        process.arguments = ["-u", name, "--", try Locations.python(), "-c", script, harness.socketPath, request]
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
        try process.run()
        XCTAssertTrue(waitUntil(timeout: 30) { !process.isRunning }, "the other user's request finished")
        return try JSON.parse((try? String(contentsOfFile: out, encoding: .utf8)) ?? "")
    }

    /// A directory that belongs to the user, inside the harness directory.
    static func ownDirectory(_ harness: DaemonHarness, _ name: String) throws -> String {
        let path = harness.dir + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard let entry = getpwnam(self.name) else { throw Capability.root.missing("there is no user \(self.name)") }
        chown(path, entry.pointee.pw_uid, entry.pointee.pw_gid)
        return path
    }

    /// Lets every user reach the binary and the harness directory (as a misconfigured install would).
    static func openTheWay(_ harness: DaemonHarness) {
        var path = URL(fileURLWithPath: harness.agentd).deletingLastPathComponent()
        while path.path != "/" {
            var info = stat()
            if stat(path.path, &info) == 0, info.st_mode & 0o005 != 0o005 { chmod(path.path, info.st_mode | 0o005) }
            path.deleteLastPathComponent()
        }
        chmod(harness.dir, 0o755)
    }
}
