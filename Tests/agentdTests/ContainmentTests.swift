import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// What keeps a job's file tools in its workspace, through the built daemon and a real socket: a
/// folder swapped for a symlink in a loop by a job sharing the workspace never leads a read or a
/// write outside; a second job in a workspace in use is refused unless both plans share it, and a
/// recovered job keeps its workspace; the daemon's own files are refused to the tools whatever their
/// name, and as a workspace; U+0000 is refused in tool paths and in submissions.
final class ContainmentTests: EndToEndTestCase {
    private var workspace: String { harness.dir + "/ws" }

    /// The actor's rule that answers, and an actor that does nothing else.
    private let answer = "{reply: {output: done}}"
    private var answers: String { "[\(answer)]" }

    /// `tools-scripted.yaml` with the actor's rules `actor` (a YAML flow list), its tools, sandbox
    /// and policy, saved as NAME.yaml; `shared` declares `workspace_shared: true`; `workspace` (YAML)
    /// replaces the workspace.
    private func plan(
        _ name: String, actor: String, tools: String, sandbox: String = "false", policy: String = "{max_attempts: 1}",
        shared: Bool = false, workspace: String? = nil
    ) throws -> String {
        let prepared = try harness.preparePlan(
            "tools-scripted.yaml", values: ["ACTOR": actor, "TOOLS": tools, "SANDBOX": sandbox, "POLICY": policy])
        var text = try String(contentsOfFile: prepared, encoding: .utf8)
        if let workspace { text = text.replacingOccurrences(of: "workspace: \"\(self.workspace)\"", with: "workspace: \(workspace)") }
        if shared { text += "workspace_shared: true\n" }
        let path = harness.dir + "/\(name).yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The error `job.submit` with `params` is answered with; a job made instead fails the test.
    private func refusal(_ params: JSON, file: StaticString = #filePath, line: UInt = #line) throws -> RPCFailure {
        do {
            let job = try harness.rpc("job.submit", params)
            XCTFail("the submission was accepted: \(job.encoded)", file: file, line: line)
            throw HarnessError("the submission was accepted")
        } catch let failure as RPCFailure {
            return failure
        }
    }

    /// The results of the job's tool calls, in order.
    private func results(_ id: String) throws -> [JSON] {
        events(try harness.events(id), kind: "tool.completed").compactMap { $0["payload"]?["result"] }
    }

    /// Lets the `cat gate` of a waiting job through: opens the FIFO for writing as soon as the command
    /// has it open for reading, and closes it (end of file).
    private func openGate() throws {
        var fd: Int32 = -1
        XCTAssertTrue(
            waitUntil(timeout: 30) {
                fd = open(workspace + "/gate", O_WRONLY | O_NONBLOCK | O_CLOEXEC)
                return fd >= 0
            }, "the waiting command opened the gate: \(String(cString: strerror(errno)))")
        close(fd)
    }

    /// Finding 1 of the containment issue: two jobs share a workspace; one swaps its folder `dir`
    /// with a symlink to a directory outside in a tight loop (`swap_folder.py`, an unsandboxed
    /// command), while the other reads and writes through `dir` hundreds of times. No read returns the
    /// outside file, nothing is written outside, and every write that succeeded is inside.
    func testAFolderSwappedForASymlinkNeverLeadsTheFileToolsOutside() throws {
        let outside = harness.dir + "/outside"
        let (ready, stop) = (harness.dir + "/swapping", harness.dir + "/stop")
        try FileManager.default.createDirectory(atPath: workspace + "/dir", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try "inside\n".write(toFile: workspace + "/dir/secret.txt", atomically: true, encoding: .utf8)
        try "OUTSIDE\n".write(toFile: outside + "/secret.txt", atomically: true, encoding: .utf8)
        try harness.start()

        let swap = #"[python3, "\#(Locations.fixtureScripts)/swap_folder.py", "\#(outside)", "\#(ready)", "\#(stop)"]"#
        let swapper = try submit(
            try plan(
                "swapper", actor: "[{turn: 0, reply: {tool_calls: [{name: run_command, arguments: {argv: \(swap)}}]}}, \(answer)]",
                tools: "[run_command]", policy: "{max_attempts: 1, tool_timeout: 600s}", shared: true))
        XCTAssertTrue(waitUntil(timeout: 30) { FileManager.default.fileExists(atPath: ready) }, "the swapping started")

        // 40 turns of 10 reads and 10 writes through the folder, each write to its own file.
        let turns = 40
        var rules: [String] = []
        for turn in 0..<turns {
            let calls = (0..<10).map {
                "{name: read_file, arguments: {path: dir/secret.txt}}, {name: write_file, arguments: {path: dir/w-\(turn)-\($0).txt, content: x}}"
            }
            rules.append("{turn: \(turn), reply: {tool_calls: [\(calls.joined(separator: ", "))]}}")
        }
        let reader = try submit(
            try plan(
                "reader", actor: "[\((rules + [answer]).joined(separator: ", "))]", tools: "[read_file, write_file]",
                policy: "{max_attempts: 1, max_tool_turns: \(turns + 1), max_tool_calls_per_turn: 20}", shared: true))
        let read = try harness.waitForJob(reader, timeout: 300)
        XCTAssertTrue(FileManager.default.createFile(atPath: stop, contents: nil))
        let swapped = try harness.waitForJob(swapper, timeout: 60)
        XCTAssertEqual(read["status"]?.stringValue, "succeeded", read.encoded)
        XCTAssertEqual(swapped["status"]?.stringValue, "succeeded", swapped.encoded)
        let swaps = Int(try results(swapper).first?["stdout"]?.stringValue?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        XCTAssertGreaterThan(swaps, 0, "the folder was swapped")

        let all = try results(reader)
        XCTAssertEqual(all.count, turns * 20)
        let reads = stride(from: 0, to: all.count, by: 2).map { all[$0] }
        let writes = stride(from: 1, to: all.count, by: 2).map { all[$0] }
        let leaked = reads.filter { $0["content"]?.stringValue?.contains("OUTSIDE") == true }
        XCTAssertEqual(leaked.count, 0, "\(leaked.count) of \(reads.count) reads returned the file outside")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside), ["secret.txt"], "nothing was written outside")
        let refused = reads.filter { $0["error"]?.stringValue?.contains("is outside the workspace") == true }
        XCTAssertGreaterThan(refused.count, 0, "some reads met the symlink (the race was run), \(swaps) swaps")
        XCTAssertEqual(
            reads.count - refused.count, reads.filter { $0["content"]?.stringValue == "inside\n" }.count,
            "every other read returned the file inside")
        let written = try FileManager.default.contentsOfDirectory(atPath: workspace + "/dir").filter { $0.hasPrefix("w-") }
        XCTAssertEqual(written.count, writes.filter { $0["bytes_written"] != nil }.count, "every write that succeeded is inside")
    }

    /// A job is refused while another job works in its workspace (however the path is spelled),
    /// unless both plans share it; after a crash the recovered job holds it again and is not refused.
    func testASecondJobInAWorkspaceInUseIsRefusedUnlessBothPlansShareIt() throws {
        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        XCTAssertEqual(mkfifo(workspace + "/gate", 0o600), 0)
        try FileManager.default.createSymbolicLink(atPath: harness.dir + "/alias", withDestinationPath: workspace)
        try harness.start()
        let waits = "[{turn: 0, reply: {tool_calls: [{name: run_command, arguments: {argv: [cat, gate]}}]}}, \(answer)]"
        let other = try plan("other", actor: answers, tools: "[read_file]")
        let sharing = try plan("sharing", actor: answers, tools: "[read_file]", shared: true)
        let aliased = try plan("aliased", actor: answers, tools: "[read_file]", workspace: "\"\(harness.dir)/alias/.\"")
        func assertRefused(_ plan: String, by holder: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let failure = try refusal(["plan_path": .string(plan)], file: file, line: line)
            XCTAssertEqual(failure.code, -32006, failure.message, file: file, line: line)
            XCTAssertTrue(failure.message.hasPrefix("workspace in use: job \(holder) ("), failure.message, file: file, line: line)
            XCTAssertTrue(failure.message.contains("works in '\(workspace)'"), failure.message, file: file, line: line)
            XCTAssertTrue(
                failure.message.contains("'workspace_shared: true'"), "the way out is named: \(failure.message)", file: file, line: line)
            XCTAssertEqual(failure.response["error"]?["data"]?["job"]?.stringValue, holder, file: file, line: line)
        }

        let holder = try submit(try plan("holder", actor: waits, tools: "[run_command]"))
        for plan in [other, sharing, aliased] { try assertRefused(plan, by: holder) }

        try harness.waitForEvent(holder, "tool.started") { $0["kind"]?.stringValue == "tool.started" }
        try harness.crash()
        try harness.restart()
        try assertRefused(other, by: holder)
        try openGate()
        XCTAssertEqual(try harness.waitForJob(holder)["status"]?.stringValue, "succeeded", "the recovered job went on")
        XCTAssertEqual(try harness.waitForJob(try submit(other))["status"]?.stringValue, "succeeded", "the workspace is free again")

        // Shared by both plans: the second job runs beside the first; a plan that does not share is kept out.
        let first = try submit(try plan("shared-holder", actor: waits, tools: "[run_command]", shared: true))
        XCTAssertEqual(try harness.waitForJob(try submit(sharing))["status"]?.stringValue, "succeeded")
        try assertRefused(other, by: first)
        try openGate()
        XCTAssertEqual(try harness.waitForJob(first)["status"]?.stringValue, "succeeded")
    }

    /// Finding 3: a workspace that contains the daemon's database is refused at submission, and a
    /// hard link to the database inside a workspace is refused to `read_file` and `write_file`; the
    /// database is untouched (`audit verify` passes) and the daemon keeps serving.
    func testTheDaemonsOwnFilesAreOffLimits() throws {
        try harness.start()
        for (name, directory) in [("db-folder", harness.dir), ("ancestor", harness.dir + "/..")] {
            let failure = try refusal(
                ["plan_path": .string(try plan(name, actor: answers, tools: "[read_file]", workspace: "\"\(directory)\""))])
            XCTAssertEqual(failure.code, -32011, failure.message)
            XCTAssertTrue(failure.message.contains("contains the daemon's own file '\(harness.dbPath)'"), failure.message)
        }

        try FileManager.default.createDirectory(atPath: workspace, withIntermediateDirectories: true)
        XCTAssertEqual(link(harness.dbPath, workspace + "/copy.db"), 0, String(cString: strerror(errno)))
        let actor = """
            [{turn: 0, reply: {tool_calls: [{name: read_file, arguments: {path: copy.db}}, \
            {name: write_file, arguments: {path: copy.db, content: "junk"}}]}}, \(answer)]
            """
        let id = try submit(try plan("linked", actor: actor, tools: "[read_file, write_file]"))
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        let results = try results(id)
        XCTAssertEqual(results.count, 2, results.description)
        for result in results {
            XCTAssertTrue(
                result["error"]?.stringValue?.contains("'copy.db' is the daemon's own file '\(harness.dbPath)'") == true,
                String(result.encoded.prefix(300)))
            XCTAssertNil(result["content"], "nothing was read")
        }
        let verify = try harness.run(["audit", "verify", "--all", "--db", harness.dbPath])
        XCTAssertEqual(verify.status, 0, "the database is intact: \(verify)")
        XCTAssertEqual(try harness.rpc("daemon.status")["pid"]?.intValue.map(Int32.init), harness.daemonPID)
    }

    /// Finding 6: a tool path or argument with U+0000 is refused (the file `ok` is not written), and
    /// so is a submission whose goal, input, directory or workspace holds one, naming the field.
    func testUPlus0000IsRefusedInToolPathsAndSubmissions() throws {
        try harness.start()
        // "\0" in a YAML double-quoted string is U+0000.
        let calls = [
            #"{name: write_file, arguments: {path: "ok\0.txt", content: "x"}}"#, #"{name: read_file, arguments: {path: "ok\0.txt"}}"#,
            #"{name: run_command, arguments: {argv: [touch, "ok\0.txt"]}}"#,
        ]
        let actor = "[{turn: 0, reply: {tool_calls: [\(calls.joined(separator: ", "))]}}, \(answer)]"
        let id = try submit(try plan("nul-tools", actor: actor, tools: "[run_command, read_file, write_file]"))
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        let errors = try results(id).map { $0["error"]?.stringValue ?? "" }
        XCTAssertEqual(errors.count, 3)
        for (error, what) in zip(errors, ["'path' of write_file", "'path' of read_file", "'argv[1]' of run_command"]) {
            XCTAssertTrue(error.contains("\(what) contains U+0000"), error)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: workspace + "/ok"), "no file 'ok' was written")
        let started = events(try harness.events(id), kind: "tool.started").compactMap { $0["payload"] }
        XCTAssertTrue(started.allSatisfy { $0["invalid"] != nil }, "recorded as refused calls: \(started)")

        let plain = try plan("nul-submission", actor: answers, tools: "[read_file]")
        let nulWorkspace = try plan("nul-workspace", actor: answers, tools: "[read_file]", workspace: #""\#(workspace)\0x""#)
        let cases: [(JSON, String)] = [
            (["plan_path": .string(plain), "goal": "a\u{0}b"], "goal"),
            (["plan_path": .string(plain), "inputs": ["x": "a\u{0}b"]], "inputs.x"),
            (["plan_path": .string(plain), "cwd": .string(harness.dir + "\u{0}/x")], "cwd"),
            (["plan_path": .string(nulWorkspace)], "workspace"),
        ]
        for (params, field) in cases {
            let failure = try refusal(params)
            XCTAssertEqual(failure.code, -32602, failure.message)
            XCTAssertTrue(failure.message.contains("'\(field)' contains U+0000"), failure.message)
        }
        XCTAssertEqual(try harness.rpc("job.list")["jobs"]?.arrayValue?.count, 1, "only the first job was made")
    }
}
