import Agents
import Foundation
import Store
import TestSupport
import XCTest

@testable import Orchestrator
@testable import Runtime

/// The tools' argument checks, path containment and file work, and the backends' tool-call parsing.
final class ToolBoxTests: XCTestCase {
    private var directory: TemporaryDirectory!
    private var root: String!

    override func setUpWithError() throws {
        directory = try TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory.path + "/ws/sub", withIntermediateDirectories: true)
        root = try ToolBox.create(directory.path + "/ws", daemonFiles: none).get()
    }

    override func tearDown() {
        directory.remove()
    }

    /// No daemon files to protect (the tests of that rule give some).
    private let none = DaemonFiles(paths: [])

    private func read(_ path: String, cap: Int = 100, daemonFiles: DaemonFiles? = nil) -> ToolResult {
        ToolBox.read(path, root: root, cap: cap, daemonFiles: daemonFiles ?? none)
    }

    private func write(_ path: String, _ content: String = "x", daemonFiles: DaemonFiles? = nil) -> ToolResult {
        ToolBox.write(path, content: content, root: root, daemonFiles: daemonFiles ?? none)
    }

    private func error(_ result: ToolResult) -> String { result.json["error"]?.stringValue ?? "(none: \(result.json.encoded))" }

    private func parse(_ name: String, _ arguments: String) -> Result<ToolInvocation, ToolProblem> {
        ToolInvocation.parse(ToolCall(id: "c", name: name, arguments: arguments), offered: ["run_command", "read_file", "write_file"])
    }

    func testArgumentsAreChecked() {
        XCTAssertEqual(try parse("run_command", #"{"argv":["ls","-l"]}"#).get(), .runCommand(argv: ["ls", "-l"]))
        XCTAssertEqual(try parse("write_file", #"{"path":"a","content":""}"#).get(), .writeFile(path: "a", content: ""))
        let problems = [
            (parse("run_command", "ls -l"), "not valid JSON"),
            (parse("run_command", "[1]"), "must be a JSON object"),
            (parse("run_command", #"{"argv":"ls -l"}"#), "must be a list of strings"),
            (parse("run_command", #"{"argv":["ls",1]}"#), "must be a list of strings"),
            (parse("run_command", #"{"argv":[]}"#), "is empty"),
            (parse("read_file", "{}"), "needs 'path'"),
            (parse("read_file", #"{"path":3}"#), "must be a string, not number"),
            (parse("shell", "{}"), "unknown tool 'shell'"),
        ]
        for (result, text) in problems {
            guard case let .failure(problem) = result else {
                XCTFail("expected a problem mentioning \(text)")
                continue
            }
            XCTAssertTrue(problem.message.contains(text), "'\(problem.message)' should mention '\(text)'")
        }
        let unoffered = ToolInvocation.parse(ToolCall(id: "c", name: "write_file", arguments: "{}"), offered: ["read_file"])
        XCTAssertEqual(unoffered, .failure(ToolProblem("unknown tool 'write_file'; the tools are: read_file")))
    }

    /// Paths are opened beneath the workspace: `..` and symlinks inside it work, anything that leads
    /// out is refused, for reading and for writing (nothing is created outside).
    func testPathsStayInsideTheWorkspace() throws {
        try "inside".write(toFile: root + "/sub/f", atomically: true, encoding: .utf8)
        try "outside".write(toFile: directory.path + "/x", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root + "/up", withDestinationPath: directory.path)
        try FileManager.default.createSymbolicLink(atPath: root + "/upward", withDestinationPath: "..")
        try FileManager.default.createSymbolicLink(atPath: root + "/inner", withDestinationPath: root + "/sub")
        try FileManager.default.createSymbolicLink(atPath: root + "/relative", withDestinationPath: "sub")
        try FileManager.default.createSymbolicLink(atPath: root + "/dangling", withDestinationPath: "/nonexistent/x")
        XCTAssertEqual(read("sub/../sub/f").json["content"]?.stringValue, "inside")
        XCTAssertEqual(read("relative/f").json["content"]?.stringValue, "inside", "a relative symlink inside the workspace is fine")
        XCTAssertTrue(write("./new/../made/dir/file").ok, "directories are made beneath the workspace")
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/made/dir/file"))
        XCTAssertTrue(error(read("dangling")).contains("is outside the workspace"), error(read("dangling")))
        for path in ["../x", "sub/../../x", "up/x", "upward/x", "inner/f", "up/new/dir/file"] {
            XCTAssertTrue(error(read(path)).contains("is outside the workspace"), "read '\(path)': \(error(read(path)))")
            XCTAssertTrue(error(write(path)).contains("is outside the workspace"), "write '\(path)': \(error(write(path)))")
        }
        XCTAssertTrue(error(read("/etc/passwd")).contains("is absolute"))
        XCTAssertTrue(error(write("")).contains("the path is empty"))
        XCTAssertEqual(try String(contentsOfFile: directory.path + "/x", encoding: .utf8), "outside", "nothing outside was written")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.path + "/new"), "no directory was made outside")
        for path in ["relative", "dangling"] {
            XCTAssertTrue(error(write(path)).contains("a symlink, which write_file does not follow"), error(write(path)))
        }
        XCTAssertTrue(error(read("/proc/self/environ")).contains("is absolute"))
    }

    /// The daemon's files are refused by identity: under their own name, through a hard link or a
    /// symlink, for reading and writing, and the file is left as it was; a workspace holding one is
    /// refused.
    func testTheDaemonsFilesAreRefusedWhateverTheirName() throws {
        let database = root + "/sub/agentd.db"
        try "SQLite format 3".write(toFile: database, atomically: true, encoding: .utf8)
        XCTAssertEqual(link(database, root + "/hard"), 0, String(cString: strerror(errno)))
        try FileManager.default.createSymbolicLink(atPath: root + "/soft", withDestinationPath: "sub/agentd.db")
        let files = DaemonFiles(paths: Bubblewrap.protectedPaths(database: database, socket: nil))
        for path in ["sub/agentd.db", "hard", "soft"] {
            XCTAssertTrue(
                error(read(path, daemonFiles: files)).contains("is the daemon's own file '\(database)'"),
                error(read(path, daemonFiles: files)))
        }
        for path in ["sub/agentd.db", "hard"] {
            XCTAssertTrue(
                error(write(path, daemonFiles: files)).contains("is the daemon's own file"), error(write(path, daemonFiles: files)))
        }
        XCTAssertEqual(try String(contentsOfFile: database, encoding: .utf8), "SQLite format 3", "not emptied")
        XCTAssertTrue(read("hard").ok, "without the rule the same file reads")

        XCTAssertEqual(files.path(inside: root), database, "the workspace is an ancestor of the database's folder")
        XCTAssertEqual(files.path(inside: root + "/sub"), database, "the workspace is the database's folder")
        XCTAssertNil(files.path(inside: root + "/made"))
        XCTAssertNil(files.path(inside: root + "/su"), "a name that merely starts the same is another directory")
        let refused = ToolBox.create(root + "/sub", daemonFiles: files)
        XCTAssertEqual(refused, .failure(ToolProblem(files.refusal(workspace: root + "/sub")!)))
    }

    func testReadAndWriteFiles() throws {
        let written = write("deep/er/f.txt", "0123456789")
        XCTAssertTrue(written.ok, written.json.encoded)
        XCTAssertEqual(written.json["bytes_written"]?.intValue, 10)
        let read = self.read("deep/er/f.txt", cap: 4)
        XCTAssertEqual(read.json["content"]?.stringValue, "0123")
        XCTAssertEqual(read.json["truncated"]?.boolValue, true)
        XCTAssertEqual(self.read("deep/er/f.txt").json["truncated"]?.boolValue, false)
        XCTAssertTrue(write("deep/er/f.txt", "ab").ok)
        XCTAssertEqual(self.read("deep/er/f.txt").json["content"]?.stringValue, "ab", "a write replaces the whole file")
        XCTAssertFalse(self.read("missing.txt").ok)
        XCTAssertTrue(error(self.read("deep")).contains("directory"))
        XCTAssertFalse(write(".").ok)
        XCTAssertTrue(error(write("deep/er/f.txt/g")).contains("is not a directory"), error(write("deep/er/f.txt/g")))
    }

    /// A FIFO (no writer, no reader) or a device is refused at once: neither blocks the tools queue.
    func testAFIFOOrADeviceIsNotAFileToReadOrWrite() throws {
        XCTAssertEqual(mkfifo(root + "/pipe", 0o600), 0)
        let read = self.read("pipe", cap: 10)
        XCTAssertFalse(read.ok)
        XCTAssertTrue(read.json["error"]?.stringValue?.contains("'pipe' is not a regular file") == true, read.json.encoded)
        let written = write("pipe")
        XCTAssertFalse(written.ok)
        XCTAssertTrue(written.json["error"]?.stringValue?.contains("'pipe'") == true, written.json.encoded)
        XCTAssertEqual(symlink("/dev/zero", root + "/zero"), 0)
        let zero = self.read("zero", cap: 10)
        XCTAssertFalse(zero.ok, "a device is no file: \(zero.json.encoded)")
    }

    /// A path or an argument with U+0000 is refused before anything runs: the kernel would read it
    /// only up to the NUL.
    func testANULInAPathOrAnArgumentIsRefused() {
        for (name, arguments, text) in [
            ("write_file", #"{"path":"ok\u0000.txt","content":"x"}"#, "'path' of write_file contains U+0000"),
            ("read_file", #"{"path":"ok\u0000.txt"}"#, "'path' of read_file contains U+0000"),
            ("run_command", #"{"argv":["touch","ok\u0000.txt"]}"#, "'argv[1]' of run_command contains U+0000"),
        ] {
            guard case let .failure(problem) = parse(name, arguments) else {
                XCTFail("\(name) \(arguments) was accepted")
                continue
            }
            XCTAssertTrue(problem.message.contains(text), problem.message)
        }
    }

    func testOpenAIReplyWithToolCallsAndNullContent() throws {
        let body = #"""
            {"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_9","type":"function","function":{"name":"run_command","arguments":"{\"argv\":[\"echo\""}}]}}]}
            """#
        let response = HTTPResponse(status: 200, headers: [("content-type", "application/json")], body: Array(body.utf8))
        let reply = try OpenAIBackend.reply(response, sent: (.null, []), attempts: 1)
        XCTAssertEqual(reply.content, "")
        XCTAssertEqual(reply.toolCalls, [ToolCall(id: "call_9", name: "run_command", arguments: #"{"argv":["echo""#)], "kept raw")
        let noText = #"{"choices":[{"message":{"role":"assistant","content":null}}]}"#
        XCTAssertThrowsError(
            try OpenAIBackend.reply(
                HTTPResponse(status: 200, headers: [("content-type", "application/json")], body: Array(noText.utf8)), sent: (.null, []),
                attempts: 1))
    }

    func testOpenAIBodyCarriesToolsAndToolChoice() {
        let request = ModelRequest(
            model: "m", messages: [ChatMessage(role: "user", content: "u")], temperature: 0, responseSchema: nil,
            context: CallContext(jobID: "J", role: .actor, step: 0, attempt: 0, replan: 0, reask: 0, hasFeedback: false, goal: "g"),
            tools: ["write_file"], toolChoice: "write_file")
        let body = OpenAIBackend.body(request, model: "x", spec: OpenAISpec(model: "x"), structured: .jsonSchema).json
        XCTAssertEqual(body["tools"]?.arrayValue?.first?["type"]?.stringValue, "function")
        XCTAssertEqual(body["tools"]?.arrayValue?.first?["function"]?["name"]?.stringValue, "write_file")
        XCTAssertEqual(body["tool_choice"]?["function"]?["name"]?.stringValue, "write_file")
    }

    func testCommandModelCanCallTools() async throws {
        let loop = startedLoop()
        defer { loop.finish() }
        let spec = CommandSpec(
            argv: ["sh", "-c", #"cat >/dev/null; echo '{"tool_calls":[{"name":"read_file","arguments":{"path":"a"}}]}'"#],
            timeoutSeconds: 10)
        let request = ModelRequest(
            model: "m", messages: [], temperature: 0, responseSchema: nil,
            context: CallContext(jobID: "J", role: .actor, step: 0, attempt: 0, replan: 0, reask: 0, hasFeedback: false, goal: "g"))
        let environment = ProcessInfo.processInfo.environment
        let launcher = CommandLauncher(
            loop: loop, sandbox: Sandbox(), bubblewrap: Bubblewrap(loop: loop, environment: environment, protectedPaths: []),
            workspace: .success(root), environment: environment, secrets: [])
        let reply = try await loop.run {
            try await CommandBackend(loop: loop, spec: spec, baseDirectory: nil, launcher: launcher).complete(request)
        }
        XCTAssertEqual(reply.toolCalls, [ToolCall(id: "call_0", name: "read_file", arguments: #"{"path":"a"}"#)])
    }

    func testCommandsRunInTheWorkspaceWithoutAPIKeys() async throws {
        let loop = startedLoop()
        defer { loop.finish() }
        var plan = Plan(
            name: "p", models: [:], planner: nil, actor: RoleSpec(model: "m", prompt: ""), critic: .model(RoleSpec(model: "m", prompt: "")),
            verifier: .command(CommandSpec(argv: ["true"], timeoutSeconds: 1)), steps: ["s"], policy: Policy())
        var spec = OpenAISpec(model: "x")
        spec.apiKeyEnv = "MY_KEY"
        plan.models["m"] = ModelSpec(backend: .openai(spec))
        let environment = [
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "MY_KEY": "k1", "OPENAI_API_KEY": "k2", "KEEP": "v",
            "PASS": "p",
        ]
        let bubblewrap = Bubblewrap(loop: loop, environment: environment, protectedPaths: [])
        func tools(_ sandbox: Sandbox) -> ToolBox {
            ToolBox(
                loop: loop, offered: ["run_command"], workspace: .success(root), policy: plan.policy, sandbox: sandbox,
                bubblewrap: bubblewrap, environment: environment, hidden: ToolBox.secretVariables(of: plan))
        }
        let root = self.root!

        // Unconfined: the daemon's environment without the keys.
        let unconfined = tools(.off)
        var result = try await loop.run { await unconfined.run(.runCommand(argv: ["sh", "-c", "pwd; env"]), key: "J/c1/0") }
        var out = result.json["stdout"]?.stringValue ?? ""
        XCTAssertTrue(result.ok, result.json.encoded)
        XCTAssertTrue(out.hasPrefix(root + "\n"), out)
        XCTAssertTrue(out.contains("AGENTD_TOOL_CALL_ID=J/c1/0") && out.contains("KEEP=v"), out)
        XCTAssertFalse(out.contains("k1") || out.contains("k2"), "API keys are not passed to tools: \(out)")

        // Sandboxed: only what agentd sets and what the plan names.
        var sandbox = Sandbox()
        sandbox.environment = ["PASS", "ABSENT"]
        let confined = tools(sandbox)
        result = try await loop.run { await confined.run(.runCommand(argv: ["sh", "-c", "pwd; env"]), key: "J/c1/1") }
        out = result.json["stdout"]?.stringValue ?? ""
        XCTAssertTrue(result.ok, result.json.encoded)
        XCTAssertTrue(out.hasPrefix(root + "\n"), out)
        let variables = Set(out.split(separator: "\n").dropFirst().map { String($0.prefix { $0 != "=" }) })
        XCTAssertEqual(variables, ["PATH", "HOME", "LANG", "PASS", "AGENTD_TOOL_CALL_ID", "AGENTD_WORKSPACE", "PWD"], out)
        XCTAssertTrue(out.contains("HOME=\(root)\n") && out.contains("PASS=p\n") && out.contains("AGENTD_TOOL_CALL_ID=J/c1/1\n"), out)
    }

    func testWorkspaceResolution() {
        func job(cwd: String?) -> JobRecord {
            JobRecord(
                id: "J", planName: "p", plan: "{}", goal: "g", inputs: ["name": "n1"], cwd: cwd, idempotencyKey: nil, status: .queued,
                reason: nil, createdAt: 0, startedAt: nil, finishedAt: nil)
        }
        var plan = Plan(
            name: "p", models: [:], planner: nil, actor: RoleSpec(model: "m", prompt: ""), critic: .model(RoleSpec(model: "m", prompt: "")),
            verifier: .command(CommandSpec(argv: ["true"], timeoutSeconds: 1)), steps: ["s"], policy: Policy())
        XCTAssertEqual(try ToolBox.workspace(plan: plan, job: job(cwd: "/home/u")).get(), "/home/u")
        XCTAssertThrowsError(try ToolBox.workspace(plan: plan, job: job(cwd: nil)).get())
        plan.workspace = "work/{input.name}"
        XCTAssertEqual(try ToolBox.workspace(plan: plan, job: job(cwd: "/home/u")).get(), "/home/u/work/n1")
        plan.workspace = "/srv/{goal}"
        XCTAssertEqual(try ToolBox.workspace(plan: plan, job: job(cwd: nil)).get(), "/srv/g")
    }
}
