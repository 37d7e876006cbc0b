import Agents
import Foundation
import Store
import TestSupport
import XCTest

@testable import Orchestrator

/// The sandbox's command line (as an ordinary user and as root), its mounts, finding the launcher and
/// `bwrap`, the probe that refuses commands when no sandbox can start, and the one-pass `{goal}` /
/// `{input.NAME}` substitution.
final class BubblewrapTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private let executables = Bubblewrap.Executables(
        launcher: "/opt/agentd/agentd-sandbox", bwrap: "/usr/bin/bwrap", prlimit: "/usr/bin/prlimit")

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
    }

    override func tearDown() {
        directory.remove()
    }

    func testTheArgvStaysSeparateEntriesAfterTheLastSeparator() throws {
        let argv = ["python3", "-c", "import sys; print(sys.argv)", "a; touch /tmp/pwned", "$(touch /tmp/pwned)", "`id`", "--", ""]
        let command = Bubblewrap.command(
            argv, executables: executables, sandbox: Sandbox(), layout: .init(workspace: "/w"), environment: [("PATH", "/bin")],
            privileged: true)
        XCTAssertEqual(Array(command.suffix(argv.count)), argv, "each entry as given, none joined, none split")
        let prlimit = try XCTUnwrap(command.firstIndex(of: "/usr/bin/prlimit"))
        XCTAssertEqual(command[prlimit - 1], "--", "bwrap's options end before prlimit")
        XCTAssertEqual(
            Array(command[prlimit...].prefix(5)), ["/usr/bin/prlimit", "--cpu=300", "--as=4294967296", "--nproc=1024", "--"])
        XCTAssertFalse(command.contains("/bin/sh"), "no shell anywhere")
    }

    func testTheCommandLineFollowsThePlansSandbox() throws {
        var sandbox = Sandbox()
        sandbox.cpuSeconds = 7
        sandbox.memoryMB = 64
        sandbox.processes = 9
        var layout = Bubblewrap.Layout(workspace: "/srv/ws")
        layout.writable = ["/var/cache/x"]
        layout.hiddenFiles = ["/srv/ws/agentd.db", "/state/agentd.sock"]
        layout.hidesRun = true
        let command = Bubblewrap.command(
            ["true"], executables: executables, sandbox: sandbox, layout: layout,
            environment: [("PATH", "/usr/bin"), ("HOME", "/srv/ws"), ("AGENTD_TOOL_CALL_ID", "J/c1/0")], privileged: false)
        func index(_ sequence: [String]) -> Int? {
            (0...(command.count - sequence.count)).first { Array(command[$0..<($0 + sequence.count)]) == sequence }
        }
        for option in [
            "--die-with-parent", "--new-session", "--unshare-user", "--disable-userns", "--unshare-pid", "--unshare-ipc", "--unshare-net",
            "--clearenv",
        ] {
            XCTAssertTrue(command.contains(option), "\(option) in \(command)")
        }
        XCTAssertEqual(Array(command.prefix(3)), ["/opt/agentd/agentd-sandbox", "--", "/usr/bin/bwrap"], "as an ordinary user, no --user")
        XCTAssertNotNil(index(["--uid", "65534", "--gid", "65534"]), "the command is nobody in its user namespace")
        XCTAssertNotNil(index(["--proc", "/proc", "--remount-ro", "/proc"]), "/proc is read-only")
        XCTAssertNotNil(index(["--cap-drop", "ALL"]))
        XCTAssertNotNil(index(["--size", "67108864", "--tmpfs", "/tmp"]))
        XCTAssertNotNil(index(["--chdir", "/srv/ws"]))
        XCTAssertNotNil(index(["--setenv", "AGENTD_TOOL_CALL_ID", "J/c1/0"]))
        XCTAssertNotNil(index(["--cpu=7", "--as=67108864", "--nproc=9"]))
        let root = try XCTUnwrap(index(["--ro-bind", "/", "/"]))
        let run = try XCTUnwrap(index(["--tmpfs", "/run"]))
        let workspace = try XCTUnwrap(index(["--bind", "/srv/ws", "/srv/ws"]))
        let writable = try XCTUnwrap(index(["--bind", "/var/cache/x", "/var/cache/x"]))
        let database = try XCTUnwrap(index(["--ro-bind", "/dev/null", "/srv/ws/agentd.db"]))
        XCTAssertNotNil(index(["--ro-bind", "/dev/null", "/state/agentd.sock"]))
        XCTAssertLessThan(root, run)
        XCTAssertLessThan(run, workspace, "the workspace may be under /run or /tmp")
        XCTAssertLessThan(workspace, database, "a daemon file inside the workspace is still covered")
        XCTAssertLessThan(writable, database)

        sandbox.network = true
        let networked = Bubblewrap.command(
            ["true"], executables: executables, sandbox: sandbox, layout: layout, environment: [], privileged: false)
        XCTAssertFalse(networked.contains("--unshare-net"))
    }

    /// A command critic's or verifier's input directory is bound read-only at its own path, after the
    /// private `/tmp` it usually lies under; as root the launcher idmaps it first, so the sandbox user
    /// reads it as its owner.
    func testACallsInputDirectoryIsBoundReadOnly() throws {
        var layout = Bubblewrap.Layout(workspace: "/srv/ws")
        layout.inputs = ["/tmp/agentd-call-abc123"]
        for privileged in [false, true] {
            let command = Bubblewrap.command(
                ["true"], executables: executables, sandbox: Sandbox(), layout: layout, environment: [], privileged: privileged)
            func index(_ sequence: [String]) -> Int? {
                (0...(command.count - sequence.count)).first { Array(command[$0..<($0 + sequence.count)]) == sequence }
            }
            let tmp = try XCTUnwrap(index(["--tmpfs", "/tmp"]), "\(command)")
            let bound = try XCTUnwrap(index(["--ro-bind", "/tmp/agentd-call-abc123", "/tmp/agentd-call-abc123"]), "\(command)")
            XCTAssertLessThan(tmp, bound, "bound into the private /tmp, not hidden by it")
            XCTAssertNil(index(["--bind", "/tmp/agentd-call-abc123", "/tmp/agentd-call-abc123"]), "never writable")
            let bwrap = try XCTUnwrap(command.firstIndex(of: "/usr/bin/bwrap"))
            XCTAssertEqual(
                Array(command[..<bwrap]).contains("/tmp/agentd-call-abc123"), privileged, "idmapped by the launcher as root only")
        }
    }

    /// A critic's command: the workspace is bound read-only, after every writable path, so a writable
    /// path that contains it (or lies inside it) cannot expose it; it is never bound writable.
    func testAReadOnlyWorkspaceIsBoundReadOnlyAfterTheWritablePaths() throws {
        var layout = Bubblewrap.Layout(workspace: "/srv/ws")
        layout.writable = ["/srv", "/srv/ws/build"]
        layout.readOnlyWorkspace = true
        for privileged in [false, true] {
            let command = Bubblewrap.command(
                ["true"], executables: executables, sandbox: Sandbox(), layout: layout, environment: [], privileged: privileged)
            func index(_ sequence: [String]) -> Int? {
                (0...(command.count - sequence.count)).first { Array(command[$0..<($0 + sequence.count)]) == sequence }
            }
            let workspace = try XCTUnwrap(index(["--ro-bind", "/srv/ws", "/srv/ws"]), "\(command)")
            XCTAssertNil(index(["--bind", "/srv/ws", "/srv/ws"]), "never writable: \(command)")
            let parent = try XCTUnwrap(index(["--bind", "/srv", "/srv"]), "\(command)")
            let inside = try XCTUnwrap(index(["--bind", "/srv/ws/build", "/srv/ws/build"]), "\(command)")
            XCTAssertLessThan(parent, workspace, "a writable parent is covered by the read-only workspace")
            XCTAssertLessThan(inside, workspace, "a writable path inside is covered too")
        }
    }

    /// As root, the launcher drops to the sandbox user and makes the mounts bwrap could not: the
    /// workspace and writable paths idmapped, the daemon's files hidden before bwrap starts.
    func testAsRootTheLauncherDropsToTheSandboxUserAndMakesTheMounts() throws {
        var sandbox = Sandbox()
        sandbox.writable = ["/var/cache/x"]
        var layout = Bubblewrap.Layout(workspace: "/srv/ws")
        layout.writable = ["/var/cache/x"]
        layout.hiddenFiles = ["/srv/ws/agentd.db", "/state/agentd.sock"]
        let command = Bubblewrap.command(
            ["true"], executables: executables, sandbox: sandbox, layout: layout, environment: [], privileged: true)
        let bwrap = try XCTUnwrap(command.firstIndex(of: "/usr/bin/bwrap"))
        XCTAssertEqual(
            Array(command[..<bwrap]),
            [
                "/opt/agentd/agentd-sandbox", "--user", "65534:65534", "--idmap", "/srv/ws", "--idmap", "/var/cache/x", "--hide",
                "/srv/ws/agentd.db", "--hide", "/state/agentd.sock", "--",
            ])
        XCTAssertFalse(command.contains("/dev/null"), "bwrap, as nobody, does not cover them again")
        XCTAssertTrue(command.contains("--bind"), "bwrap still binds the workspace writable")
    }

    func testTheLayoutHidesTheDaemonsFilesAndNeedsTheWritablePaths() throws {
        let db = directory.path + "/agentd.db"
        XCTAssertTrue(FileManager.default.createFile(atPath: db, contents: Data("x".utf8)))
        XCTAssertTrue(FileManager.default.createFile(atPath: db + "-wal", contents: nil))
        var sandbox = Sandbox()
        let protected = Bubblewrap.protectedPaths(database: db, socket: directory.path + "/missing.sock")
        let layout = try Bubblewrap.layout(workspace: directory.path, sandbox: sandbox, protectedPaths: protected).get()
        let real = try XCTUnwrap(ToolBox.realPath(directory.path))
        XCTAssertEqual(layout.hiddenFiles, [real + "/agentd.db", real + "/agentd.db-wal"], "the files that exist, resolved")

        sandbox.writable = [directory.path, directory.path + "/nope"]
        guard case let .failure(problem) = Bubblewrap.layout(workspace: directory.path, sandbox: sandbox, protectedPaths: []) else {
            return XCTFail("a writable path that does not exist is refused")
        }
        XCTAssertTrue(problem.message.contains("'\(directory.path)/nope' cannot be used: No such file or directory"), problem.message)
    }

    func testFindingTheExecutables() throws {
        let noLauncher = Bubblewrap.locate(override: nil, launcher: "/nonexistent/agentd-sandbox", searchPath: "/usr/bin:/bin")
        XCTAssertTrue(
            failure(noLauncher).contains("/nonexistent/agentd-sandbox (named by AGENTD_SANDBOX_LAUNCHER) is not an executable file"),
            failure(noLauncher))
        let found = try Bubblewrap.locate(override: nil, searchPath: "/usr/bin:/bin").get()
        XCTAssertTrue(found.launcher.hasSuffix("/agentd-sandbox"), "the launcher built beside this executable: \(found.launcher)")
        let missing = Bubblewrap.locate(override: "/nonexistent/bwrap", searchPath: "/usr/bin:/bin")
        XCTAssertTrue(failure(missing).contains("/nonexistent/bwrap (named by AGENTD_BWRAP) is not an executable file"), failure(missing))
        XCTAssertTrue(failure(missing).contains("sandbox: false"), "the way out is named: \(failure(missing))")
        let notInPath = Bubblewrap.locate(override: nil, searchPath: directory.path)
        XCTAssertTrue(failure(notInPath).contains("bwrap was not found in PATH (\(directory.path))"), failure(notInPath))
        let script = try executable("bwrap", "exit 0")
        let noPrlimit = Bubblewrap.locate(override: script, searchPath: directory.path)
        XCTAssertTrue(failure(noPrlimit).contains("prlimit (util-linux)"), failure(noPrlimit))
    }

    /// A `bwrap` that cannot create namespaces (here a script that fails as bwrap does) makes every
    /// sandboxed command a refusal naming the problem; nothing runs unconfined.
    func testACommandIsRefusedWhenTheSandboxCannotStart() async throws {
        let fake = try executable("fake-bwrap", "echo 'bwrap: No permissions to create new namespace' >&2; exit 1")
        let loop = startedLoop()
        defer { loop.finish() }
        // Not as root: the fake lives in a directory only the test's user can enter.
        let bubblewrap = Bubblewrap(
            loop: loop, environment: ["AGENTD_BWRAP": fake, "PATH": "/usr/bin:/bin"], protectedPaths: [], privileged: false)
        let root = try ToolBox.create(directory.path + "/ws", daemonFiles: DaemonFiles(paths: [])).get()
        let tools = ToolBox(
            loop: loop, offered: ["run_command"], workspace: .success(root), policy: Policy(), sandbox: Sandbox(),
            bubblewrap: bubblewrap, environment: [:])
        let result = try await loop.run { await tools.run(.runCommand(argv: ["touch", root + "/ran"]), key: "J/c1/0") }
        XCTAssertFalse(result.ok)
        let error = result.json["error"]?.stringValue ?? ""
        XCTAssertTrue(error.contains("could not create a sandbox (exit status 1): bwrap: No permissions to create new namespace"), error)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root + "/ran"), "the command did not run")
    }

    func testSubstitutionIsOnePassWithinEachEntry() {
        let inputs: JSON = ["x": "a; touch /tmp/pwned {goal}", "n": 3, "y": "{input.x}"]
        XCTAssertEqual(
            VerifierCommand.substitute(
                ["run", "{input.x}", "-n={input.n}", "{goal}|{input.y}", "{input.none}", "{", "{goal"], goal: "$(id) {input.n}",
                inputs: inputs),
            ["run", "a; touch /tmp/pwned {goal}", "-n=3", "$(id) {input.n}|{input.x}", "{input.none}", "{", "{goal"])
    }

    private func failure(_ result: Result<Bubblewrap.Executables, ToolProblem>) -> String {
        if case let .failure(problem) = result { return problem.message }
        return "(no failure)"
    }

    /// A shell script named `name` in the test directory, made executable.
    private func executable(_ name: String, _ body: String) throws -> String {
        let path = directory.path + "/" + name
        try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o755)
        return path
    }
}
