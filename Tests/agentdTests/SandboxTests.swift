import Foundation
import Store
import TestSupport
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// The actor's `run_command` in its bubblewrap sandbox, through the built daemon and the real
/// `bwrap`: writes outside the workspace fail, there is no network unless the plan allows it, the
/// environment is scrubbed, the command is alone in its PID namespace, its CPU time, memory and
/// processes are limited, the daemon's database is hidden, plan inputs stay whole argv entries, and
/// without a usable `bwrap` commands are refused unless the plan turns the sandbox off.
final class SandboxTests: EndToEndTestCase {
    private var workspace: String { harness.dir + "/ws" }

    /// The tests that need no working `bwrap`: they point the daemon at one that does not exist.
    private static let withoutBubblewrap = ["testWithoutBwrapCommandsAreRefusedUnlessThePlanTurnsTheSandboxOff"]

    override func setUpWithError() throws {
        try super.setUpWithError()
        if !Self.withoutBubblewrap.contains(where: { name.contains($0) }) { try requireBubblewrap() }
    }

    /// Runs `tools-scripted.yaml` with the actor's rules `actor` (a YAML flow list) and the sandbox
    /// `sandbox`, starting the daemon first if needed; returns the job and the results its tools gave.
    private func run(
        actor: String, sandbox: String, policy: String = "{max_attempts: 1}", file: StaticString = #filePath, line: UInt = #line
    ) throws -> (job: JSON, results: [JSON], summary: String) {
        if harness.daemon?.isRunning != true { try harness.start() }
        let plan = try harness.preparePlan(
            "tools-scripted.yaml", values: ["ACTOR": actor, "TOOLS": "[run_command]", "SANDBOX": sandbox, "POLICY": policy])
        let id = try submit(plan, file: file, line: line)
        let job = try harness.waitForJob(id, timeout: 60)
        let events = try harness.events(id)
        let summary = dump(events)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "a tool's failure is not the job's: \(summary)", file: file, line: line)
        let results = self.events(events, kind: "tool.completed").compactMap { $0["payload"]?["result"] }
        return (job, results, summary)
    }

    /// An actor that runs each argv (YAML flow lists) in one turn, then answers.
    private func commands(_ argvs: [String]) -> String {
        let calls = argvs.map { "{name: run_command, arguments: {argv: \($0)}}" }.joined(separator: ", ")
        return "[{turn: 0, reply: {tool_calls: [\(calls)]}}, {turn: 1, reply: {output: \"done\"}}]"
    }

    func testAToolCannotWriteOutsideItsWorkspace() throws {
        let outside = try outsideDirectory()
        let (_, results, summary) = try run(
            actor: commands([
                #"[sh, -c, "echo in > inside.txt"]"#,
                #"[sh, -c, "echo out > \#(outside)/planted.txt"]"#,
                #"[sh, -c, "echo out > \#(harness.dir)/planted.txt"]"#,
                // Root (as these tests usually run) keeps no capability that could make the root writable.
                #"[sh, -c, "mount -o remount,bind,rw / && echo out > \#(outside)/remounted.txt"]"#,
            ]), sandbox: "true")
        XCTAssertEqual(results.count, 4, summary)
        XCTAssertEqual(results[0]["exit_status"]?.intValue, 0, results[0].encoded)
        XCTAssertEqual(try String(contentsOfFile: workspace + "/inside.txt", encoding: .utf8), "in\n", "the workspace is writable")

        XCTAssertNotEqual(results[1]["exit_status"]?.intValue, 0, results[1].encoded)
        XCTAssertTrue(results[1]["stderr"]?.stringValue?.contains("Read-only file system") == true, results[1].encoded)
        XCTAssertFalse(FileManager.default.fileExists(atPath: outside + "/planted.txt"), "nothing was written outside")
        // Under /tmp the write lands in the sandbox's own empty tmpfs, which is gone with it.
        XCTAssertFalse(FileManager.default.fileExists(atPath: harness.dir + "/planted.txt"), "nothing was written next to the workspace")
        XCTAssertNotEqual(results[3]["exit_status"]?.intValue, 0, results[3].encoded)
        XCTAssertFalse(FileManager.default.fileExists(atPath: outside + "/remounted.txt"), "the root could not be made writable")
    }

    /// The probes of `sandbox_probe.py`, as a hostile plan or model would run them, with the daemon as
    /// whatever user runs the tests (root in CI): the command is the unprivileged `nobody` inside its
    /// user namespace, `/proc` is read-only, the seccomp filter refuses namespaces, mounts, ptrace and
    /// keyrings, and `processes:` stops a fork bomb. Each refusal is read back from the job's record.
    func testAHostileCommandIsRefusedEverythingThatReachesTheHost() throws {
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: Locations.fixtureScripts + "/sandbox_probe.py", toPath: workspace + "/probe.py")
        let (_, results, summary) = try run(
            actor: commands(["[python3, probe.py, '200']"]), sandbox: "{processes: 20}", policy: "{max_attempts: 1, tool_timeout: 60s}")
        let result = try XCTUnwrap(results.first, summary)
        XCTAssertEqual(result["exit_status"]?.intValue, 0, result.encoded)
        let lines = try CommandResult.lines(result["stdout"]?.stringValue ?? "").map { try JSON.parse(String($0)) }
        let identity = try XCTUnwrap(lines.first { $0["probe"]?.stringValue == "identity" }, result.encoded)
        XCTAssertEqual(identity["uid"]?.intValue, 65534, "the command runs as nobody: \(identity.encoded)")
        XCTAssertEqual(identity["gid"]?.intValue, 65534, identity.encoded)
        let probes = lines.filter { $0["refused"] != nil }
        let names = probes.compactMap { $0["probe"]?.stringValue }
        for expected in [
            "write /proc/sys/kernel/hostname", "write /proc/sys/kernel/core_pattern", "write /proc/sys/vm/drop_caches",
            "write /proc/sys/kernel/printk_ratelimit", "write /proc/sysrq-trigger", "sethostname", "read /etc/shadow",
            "unshare user namespace", "unshare mount namespace", "mount tmpfs", "ptrace attach", "seccomp", "fork_bomb",
        ] {
            XCTAssertTrue(names.contains(expected), "probe '\(expected)' ran: \(result.encoded)")
        }
        for probe in probes {
            XCTAssertEqual(probe["refused"]?.boolValue, true, "refused: \(probe.encoded)")
        }
        // `processes: 20` counts every process of the sandbox (bwrap's init and the probe among them).
        let bomb = try XCTUnwrap(probes.first { $0["probe"]?.stringValue == "fork_bomb" })
        let forked = Int(bomb["detail"]?.stringValue?.prefix { $0.isNumber } ?? "") ?? -1
        XCTAssertTrue((1..<20).contains(forked), "the fork bomb stopped below the limit: \(bomb.encoded)")
    }

    func testNoNetworkUnlessThePlanAllowsIt() throws {
        let listener = try TCPListener()
        let connect =
            #"[python3, -c, "import socket; socket.create_connection(('127.0.0.1', \#(listener.port)), timeout=10).sendall(b'hello')"]"#

        let (_, closed, summary) = try run(actor: commands([connect]), sandbox: "true")
        XCTAssertEqual(closed.count, 1, summary)
        XCTAssertNotEqual(closed[0]["exit_status"]?.intValue, 0, closed[0].encoded)
        let error = closed[0]["stderr"]?.stringValue ?? ""
        XCTAssertTrue(error.contains("Connection refused") || error.contains("Network is unreachable"), error)
        XCTAssertNil(try listener.acceptWaiting(), "the listener saw no connection")

        let (_, open, _) = try run(actor: commands([connect]), sandbox: "{network: true}")
        XCTAssertEqual(open.first?["exit_status"]?.intValue, 0, open.first?.encoded ?? "")
        XCTAssertEqual(try listener.acceptWaiting(), "hello", "with network: true it connects")
    }

    func testTheEnvironmentIsScrubbed() throws {
        harness.daemonEnvironment = ["AGENTD_E2E_PRIVATE": "daemon-only-value", "AGENTD_E2E_PASSED": "passed-value"]
        let (_, sandboxed, summary) = try run(actor: commands(["[env]"]), sandbox: "{env: [AGENTD_E2E_PASSED, AGENTD_E2E_UNSET]}")
        let env = sandboxed.first?["stdout"]?.stringValue ?? ""
        XCTAssertEqual(sandboxed.first?["exit_status"]?.intValue, 0, summary)
        XCTAssertFalse(env.contains("daemon-only-value"), "the daemon's variables stay outside: \(env)")
        let names = Set(CommandResult.lines(env).map { String($0.prefix { $0 != "=" }) })
        XCTAssertEqual(names, ["PATH", "HOME", "LANG", "AGENTD_E2E_PASSED", "AGENTD_TOOL_CALL_ID", "AGENTD_WORKSPACE", "PWD"], env)
        let real = URL(fileURLWithPath: workspace).resolvingSymlinksInPath().path
        for line in ["AGENTD_E2E_PASSED=passed-value", "HOME=\(real)", "LANG=C.UTF-8", "AGENTD_WORKSPACE=\(real)"] {
            XCTAssertTrue(CommandResult.lines(env).contains(line), "\(line) in \(env)")
        }

        let (_, unconfined, _) = try run(actor: commands(["[env]"]), sandbox: "false")
        XCTAssertTrue(
            unconfined.first?["stdout"]?.stringValue?.contains("AGENTD_E2E_PRIVATE=daemon-only-value") == true,
            "without the sandbox a command sees the daemon's environment")
    }

    func testTheCommandIsAloneInItsOwnPIDNamespace() throws {
        let list = #"[python3, -c, "import os; print(os.getpid(), sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"]"#
        let (_, results, summary) = try run(actor: commands([list]), sandbox: "true")
        XCTAssertEqual(results.first?["exit_status"]?.intValue, 0, summary)
        // pid 1 is bwrap's init; the command (prlimit exec'd it) is pid 2, and nothing else is visible.
        XCTAssertEqual(results.first?["stdout"]?.stringValue, "2 [1, 2]\n", "the daemon (pid \(harness.daemonPID ?? 0)) is invisible")
    }

    func testCPUTimeAndMemoryAreLimited() throws {
        let (_, results, summary) = try run(
            actor: commands([
                #"[python3, -c, "while True: pass"]"#,
                #"[python3, -c, "b = bytearray(256 << 20)"]"#,
                #"[python3, -c, "print(len(bytearray(8 << 20)))"]"#,
            ]),
            sandbox: "{cpu_seconds: 1, memory_mb: 64}", policy: "{max_attempts: 1, tool_timeout: 30s}")
        XCTAssertEqual(results.count, 3, summary)
        // The busy loop is killed by the CPU limit (SIGXCPU, or SIGKILL at the hard limit; bwrap
        // reports a signal as 128 + N), long before the tool's timeout.
        XCTAssertEqual(results[0]["timed_out"]?.boolValue, false, results[0].encoded)
        XCTAssertTrue([128 + Int(SIGXCPU), 128 + Int(SIGKILL)].contains(results[0]["exit_status"]?.intValue ?? 0), results[0].encoded)
        XCTAssertNotEqual(results[1]["exit_status"]?.intValue, 0, results[1].encoded)
        XCTAssertTrue(results[1]["stderr"]?.stringValue?.contains("MemoryError") == true, results[1].encoded)
        XCTAssertEqual(results[2]["stdout"]?.stringValue, "8388608\n", "within the limit it runs: \(results[2].encoded)")
    }

    /// The process limit with the daemon as an ordinary user (`nobody`, when the tests run as root):
    /// bwrap runs as the daemon's user, without the launcher's drop. (As root, the probe test above
    /// shows the same limit through the launcher's drop to the sandbox user.)
    func testTheProcessLimitStopsAForkBombOfAnOrdinaryUser() throws {
        if geteuid() == 0 {
            guard let nobody = getpwnam("nobody") else { throw Capability.root.missing("there is no user nobody to run the daemon as") }
            let (uid, gid) = (nobody.pointee.pw_uid, nobody.pointee.pw_gid)
            XCTAssertEqual(chown(harness.dir, uid, gid), 0, String(cString: strerror(errno)))
            harness.daemonUser = (uid, gid)
        }
        let spawn = #"[sh, -c, "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16; do sleep 0.2 & done; wait; echo all started"]"#
        let (_, limited, summary) = try run(actor: commands([spawn]), sandbox: "{processes: 8}")
        XCTAssertNotEqual(limited.first?["exit_status"]?.intValue, 0, summary)
        XCTAssertTrue(limited.first?["stderr"]?.stringValue?.contains("Cannot fork") == true, limited.first?.encoded ?? "")
        XCTAssertEqual(limited.first?["stdout"]?.stringValue, "", "the loop never finished")

        let (_, roomy, _) = try run(actor: commands([spawn]), sandbox: "{processes: 64}")
        XCTAssertEqual(roomy.first?["stdout"]?.stringValue, "all started\n", roomy.first?.encoded ?? "")
    }

    /// The job-wide limits, in the job's own control groups (cgroup v1 memory and pids, as root): a
    /// command past the job's memory is killed by the kernel though it is far under its own
    /// `memory_mb`, forks past the job's processes fail, and the groups are gone once the job ends.
    func testAJobsCommandsShareItsMemoryAndProcessLimits() throws {
        try Capability.cgroupV1.require(
            geteuid() == 0 && FileManager.default.fileExists(atPath: "/sys/fs/cgroup/pids/cgroup.procs"),
            "job control groups need root and cgroup v1 memory and pids hierarchies")
        let spawn = #"[sh, -c, "for i in $(seq 1 40); do sleep 1 & done; wait; echo all started"]"#
        let (job, results, summary) = try run(
            actor: commands([
                #"[python3, -c, "b = bytearray(256 << 20); print(len(b))"]"#, spawn, #"[python3, -c, "print(len(bytearray(8 << 20)))"]"#,
            ]),
            sandbox: "{job_memory_mb: 64, job_processes: 20}", policy: "{max_attempts: 1, tool_timeout: 60s}")
        XCTAssertEqual(results.count, 3, summary)
        XCTAssertEqual(
            results[0]["exit_status"]?.intValue, 128 + Int(SIGKILL), "the kernel killed it at the job's memory: \(results[0].encoded)")
        XCTAssertEqual(results[0]["stdout"]?.stringValue, "", results[0].encoded)
        XCTAssertTrue(results[1]["stderr"]?.stringValue?.contains("fork") == true, "forks failed: \(results[1].encoded)")
        XCTAssertEqual(results[1]["stdout"]?.stringValue, "", results[1].encoded)
        XCTAssertEqual(results[2]["stdout"]?.stringValue, "8388608\n", "within the limits it runs: \(results[2].encoded)")
        let pid = try XCTUnwrap(harness.daemonPID)
        let group = "/sys/fs/cgroup/pids/agentd-\(pid)/" + (try XCTUnwrap(job["id"]?.stringValue))
        XCTAssertTrue(
            waitUntil(timeout: 10) { !FileManager.default.fileExists(atPath: group) }, "the job's groups are removed when it ends")
    }

    /// With the database outside /tmp, a command could read it from the read-only root; the sandbox
    /// covers it and its lock with /dev/null on a mount without devices, which cannot be opened at all.
    func testTheDaemonsDatabaseIsHiddenFromCommands() throws {
        let outside = try outsideDirectory()
        let db = outside + "/agentd.db"
        try harness.start(db: db)
        let (_, results, summary) = try run(
            actor: commands([#"[sh, -c, "wc -c < \#(db); wc -c < \#(db).lock; echo junk > \#(db)"]"#]), sandbox: "true")
        let result = try XCTUnwrap(results.first, summary)
        XCTAssertEqual(result["stdout"]?.stringValue, "", "nothing was read: \(result.encoded)")
        let stderr = result["stderr"]?.stringValue ?? ""
        for line in [
            "cannot open \(db): Permission denied", "cannot open \(db).lock: Permission denied", "cannot create \(db): Permission denied",
        ] {
            XCTAssertTrue(stderr.contains(line), "\(line) in \(stderr)")
        }
        let header = try XCTUnwrap(FileManager.default.contents(atPath: db)).prefix(15)
        XCTAssertEqual(String(decoding: header, as: UTF8.self), "SQLite format 3", "the database is untouched")
        XCTAssertEqual(try harness.rpc("daemon.status")["pid"]?.intValue.map(Int32.init), harness.daemonPID)
    }

    /// The sandbox hides the daemon's files by their names: while a second name exists (a hard link
    /// inside the workspace, here), every sandboxed command is refused rather than let it read the
    /// database through the link.
    func testAHardLinkToTheDatabaseRefusesSandboxedCommands() throws {
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        try harness.start()
        XCTAssertEqual(link(harness.dbPath, workspace + "/db-link"), 0, String(cString: strerror(errno)))
        let (_, results, summary) = try run(actor: commands([#"[sh, -c, "wc -c < db-link"]"#]), sandbox: "true")
        let result = try XCTUnwrap(results.first, summary)
        XCTAssertNil(result["stdout"], "the command did not run: \(result.encoded)")
        XCTAssertTrue((result["error"]?.stringValue ?? "").contains("has 2 names (a hard link to it exists)"), result.encoded)
        XCTAssertEqual(unlink(workspace + "/db-link"), 0)
        let (_, after, _) = try run(actor: commands(["[\"true\"]"]), sandbox: "true")
        XCTAssertEqual(after.first?["exit_status"]?.intValue, 0, "without the link, commands run again")
    }

    func testPlanInputsReachCommandsAsWholeArgvEntries() throws {
        try harness.start()
        let token = harness.marker
        let goal = #"x"; touch /tmp/pwned-\#(token); echo $(touch /tmp/pwned-\#(token)) `id` 'q' {input.x} \"#
        let input = #"a; touch /tmp/pwned-\#(token) $(touch /tmp/pwned-\#(token)) && rm -rf "$HOME" {goal}"#
        let plan = try harness.preparePlan("argv-inputs.yaml")
        let id = try submit(plan, ["--goal", goal, "--input", "x=\(input)"])
        let job = try harness.waitForJob(id, timeout: 60)
        let events = try harness.events(id)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", dump(events))

        let result = try XCTUnwrap(self.events(events, kind: "tool.completed").first?["payload"]?["result"], dump(events))
        XCTAssertEqual(
            try JSON.parse(result["stdout"]?.stringValue ?? ""), [.string(goal)], "the sandboxed command got the goal as one entry")
        let verifier = try JSON.parse(try String(contentsOfFile: harness.dir + "/verifier-argv.json", encoding: .utf8))
        XCTAssertEqual(
            verifier, [.string(input), .string(goal), .string("[\(input)|\(goal)]")],
            "each input and the goal stay inside their own entry, substituted once")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/pwned-\(token)"), "no shell ever read them")
    }

    func testWithoutBwrapCommandsAreRefusedUnlessThePlanTurnsTheSandboxOff() throws {
        let outside = try outsideDirectory()
        harness.daemonEnvironment = ["AGENTD_BWRAP": "/nonexistent/bwrap"]
        let (_, refused, summary) = try run(actor: commands(["[touch, ran.txt]"]), sandbox: "true")
        let error = refused.first?["error"]?.stringValue ?? ""
        XCTAssertTrue(error.contains("/nonexistent/bwrap (named by AGENTD_BWRAP) is not an executable file"), summary)
        XCTAssertTrue(error.contains("'sandbox: false'"), "the way out is named: \(error)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace + "/ran.txt"), "the command did not run unconfined")

        let (_, unconfined, _) = try run(
            actor: commands([#"[sh, -c, "touch ran.txt && echo out > \#(outside)/unconfined.txt"]"#]), sandbox: "{enabled: false}")
        XCTAssertEqual(unconfined.first?["exit_status"]?.intValue, 0, unconfined.first?.encoded ?? "")
        XCTAssertTrue(FileManager.default.fileExists(atPath: workspace + "/ran.txt"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: outside + "/unconfined.txt"), "opting out means no confinement")
    }
}

/// A TCP listener on 127.0.0.1 (an ephemeral port) in the test process, to see whether a sandboxed
/// command reaches it.
private final class TCPListener {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ready = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ready else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw HarnessError("cannot listen on 127.0.0.1: \(reason)")
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }

    /// What the first connection that is already waiting sent, or nil when none is waiting. A
    /// connection the command made is queued before the command's result is recorded, so no wait is
    /// needed.
    func acceptWaiting() throws -> String? {
        let connection = accept(fd, nil, nil)
        if connection < 0 {
            guard errno == EAGAIN || errno == EWOULDBLOCK else { throw HarnessError("accept: \(String(cString: strerror(errno)))") }
            return nil
        }
        defer { close(connection) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 256)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(connection, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
