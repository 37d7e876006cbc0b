import Agents
import Foundation
import Runtime
import Store

/// The `command` model backend: one subprocess per call, spawned on the loop with `uv_spawn`.
///
/// The child gets the model request as one JSON object on stdin and must print one JSON object on
/// stdout: `{"content": "<the model's text>"}` optionally with `"usage": {"input_tokens": n,
/// "output_tokens": n}`, or any other object, which is then taken as the reply itself (so a script can
/// print a verdict directly). `{"tool_calls": [...]}` (with an optional `content`) calls tools, each
/// `{"name", "arguments", "id"?}` or in OpenAI's shape (see `ToolCall.list(from:)`). A non-zero exit, a signal, the timeout or output that is not a JSON
/// object fails the call, with the child's stderr recorded. stdout and stderr are each read up to
/// 4 MiB: a longer reply is cut, and so fails as invalid JSON.
///
/// The command is started by the job's `CommandLauncher`: in the plan's sandbox unless the plan or
/// the model's `sandbox: false` opts out, with no secret it does not name in `env`, and with
/// `AGENTD_CALL_ID`, the call's idempotency key (the same when a call interrupted by a crash is made
/// again).
struct CommandBackend: ModelBackend {
    let loop: EventLoop
    let spec: CommandSpec
    let baseDirectory: String?
    let launcher: CommandLauncher

    func complete(_ request: ModelRequest) async throws(ModelCallError) -> ModelReply {
        // Exactly the request the transcript records.
        var stdin = [UInt8]()
        request.json.write(to: &stdin)
        stdin.append(0x0A)
        let launch = try await launcher.launch(spec, cwd: spec.cwd ?? baseDirectory, request: request)
        let result: ProcessResult
        do {
            result = try await ChildProcess.run(
                loop: loop,
                .init(
                    argv: launch.argv, cwd: launch.cwd, environment: launch.environment, stdin: stdin,
                    timeoutMilliseconds: UInt64(spec.timeoutSeconds * 1000), outputCap: 4 << 20))
        } catch {
            throw ModelCallError(.spawn, "cannot start \(spec.argv[0]): \(error.message)")
        }
        let stderr = result.stderrText.isEmpty ? nil : result.stderrText
        if result.cancelled { throw ModelCallError(.cancelled, "cancelled", stderr: stderr) }
        if result.timedOut { throw ModelCallError(.timeout, "model command timed out after \(spec.timeoutSeconds)s", stderr: stderr) }
        guard result.succeeded else {
            throw ModelCallError(.exit, "model command failed: \(result.summary(timeoutSeconds: spec.timeoutSeconds))", stderr: stderr)
        }
        guard result.stdout.contains(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) else {
            throw ModelCallError(.badReply, "model command printed nothing on stdout", stderr: stderr)
        }
        let reply: JSON
        do {
            reply = try JSON.parse(result.stdout)
        } catch {
            throw ModelCallError(
                .badReply, "model command printed invalid JSON (\(error)): \(result.stdoutText.prefix(80))", stderr: stderr)
        }
        guard case .object = reply else {
            throw ModelCallError(.badReply, "model command printed JSON \(reply.typeName), expected an object", stderr: stderr)
        }
        var usage: TokenUsage?
        if let u = reply["usage"], let i = u["input_tokens"]?.intValue, let o = u["output_tokens"]?.intValue {
            usage = TokenUsage(input: i, output: o)
        }
        // The record says whether the command ran in the sandbox.
        let raw: JSON = ["sandbox": .bool(launcher.confines(spec))]
        if let listed = reply["tool_calls"], let calls = ToolCall.list(from: listed), !calls.isEmpty {
            return ModelReply(content: reply["content"]?.stringValue ?? "", toolCalls: calls, usage: usage, raw: raw)
        }
        if let content = reply["content"]?.stringValue {
            return ModelReply(content: content, usage: usage, raw: raw)
        }
        return ModelReply(content: reply.encoded, usage: usage, raw: raw)
    }
}

extension CommandLauncher {
    /// How to start a plan's command (a `command` model's or a command critic's or verifier's) for one
    /// call; `inputs` and `variables` as for `launch(_:cwd:confined:…)`.
    ///
    /// - Throws: `ModelCallError` (`.spawn`) when the sandbox cannot start or the workspace cannot be
    ///   made: the command does not run.
    func launch(
        _ spec: CommandSpec, cwd: String?, request: ModelRequest, inputs: CallInputs? = nil, variables: [(String, String)] = []
    ) async throws(ModelCallError) -> Launch {
        switch await launch(
            spec.argv, cwd: cwd, confined: confines(spec), named: spec.environment, keyVariable: "AGENTD_CALL_ID",
            key: request.idempotencyKey, needsWorkspace: false, inputs: inputs, variables: variables)
        {
        case let .success(launch): return launch
        case let .failure(problem): throw ModelCallError(.spawn, "cannot start \(spec.argv[0]): \(problem.message)")
        }
    }

    /// Runs a command critic's or verifier's command once: `files` are written to a fresh
    /// `CallInputs` directory, `variables` (given that directory) name them, and the directory is
    /// removed when the command has ended, however it ended. stdout and stderr are each read up to
    /// `outputCap` bytes.
    ///
    /// - Throws: `ModelCallError`: `.spawn` when the inputs, the sandbox or the process cannot be
    ///   made (the command did not run), `.cancelled` when the job was cancelled.
    func run(
        _ spec: CommandSpec, cwd: String?, request: ModelRequest, files: [(name: String, contents: String)],
        variables: (CallInputs) -> [(String, String)], outputCap: Int
    ) async throws(ModelCallError) -> ProcessResult {
        let inputs: CallInputs
        switch await CallInputs.make(files) {
        case let .success(made): inputs = made
        case let .failure(problem): throw ModelCallError(.spawn, "cannot start \(spec.argv[0]): \(problem.message)")
        }
        let outcome: Result<ProcessResult, ModelCallError>
        do {
            let launch = try await launch(spec, cwd: cwd, request: request, inputs: inputs, variables: variables(inputs))
            do {
                outcome = .success(
                    try await ChildProcess.run(
                        loop: loop,
                        .init(
                            argv: launch.argv, cwd: launch.cwd, environment: launch.environment,
                            timeoutMilliseconds: UInt64(spec.timeoutSeconds * 1000), outputCap: outputCap)))
            } catch {
                outcome = .failure(ModelCallError(.spawn, "cannot start \(spec.argv[0]): \(error.message)"))
            }
        } catch {
            outcome = .failure(error)
        }
        await inputs.remove()
        let result = try outcome.get()
        if result.cancelled { throw ModelCallError(.cancelled, "cancelled") }
        return result
    }

    /// What a command critic's or verifier's record says about its run: argv, `cwd`, whether it ran
    /// in the sandbox, how it ended, and its stdout and stderr (each as read, up to the cap).
    func raw(_ spec: CommandSpec, cwd: String?, _ result: ProcessResult) -> JSON {
        .object([
            ("argv", .array(spec.argv.map(JSON.string))), ("cwd", cwd.map(JSON.string) ?? .null),
            ("sandbox", .bool(confines(spec))),
            ("exit_status", .int(Int(result.exitStatus))), ("signal", .int(Int(result.termSignal))),
            ("timed_out", .bool(result.timedOut)),
            ("stdout", .string(result.stdoutText)), ("stdout_truncated", .bool(result.stdoutTruncated)),
            ("stderr", .string(result.stderrText)), ("stderr_truncated", .bool(result.stderrTruncated)),
        ])
    }
}

/// The verifier as a command: its exit status decides (0 = verified). Runs as the verifier agent's
/// backend so the command and its result are recorded like any other call; started like a `command`
/// model (`CommandLauncher`), and its record says whether it ran in the sandbox.
///
/// It reads every step's final output from `$AGENTD_STEP_OUTPUTS`, a JSON file
/// `[{"step": "...", "output": "..."}, …]` in step order (in a private directory of the call's,
/// `CallInputs`, bound read-only into the sandbox), written from the request's `stepOutputs`.
struct VerifierCommand: ModelBackend {
    let loop: EventLoop
    /// The plan's command, its argv substituted.
    let spec: CommandSpec
    let cwd: String?
    let launcher: CommandLauncher

    var argv: [String] { spec.argv }
    var timeoutSeconds: Double { spec.timeoutSeconds }

    /// A command verifier's request: the argv it runs (what is recorded), and the steps' outputs its
    /// file holds (`stepOutputs`, not recorded: the record has each step's accepted output already).
    static func request(
        _ spec: CommandSpec, jobID: String, goal: String, replan: Int, results: [(step: String, output: String)]
    ) -> ModelRequest {
        var request = ModelRequest(
            model: "command",
            messages: [ChatMessage(role: "user", content: "run \(JSON.array(spec.argv.map(JSON.string)).encoded)")],
            temperature: 0, responseSchema: nil,
            context: CallContext(
                jobID: jobID, role: .verifier, step: nil, attempt: nil, replan: replan, reask: 0, hasFeedback: false, goal: goal))
        request.stepOutputs = outputs(results)
        return request
    }

    /// `[{"step", "output"}, …]`: the contents of `$AGENTD_STEP_OUTPUTS`.
    static func outputs(_ results: [(step: String, output: String)]) -> JSON {
        .array(results.map { .object([("step", .string($0.step)), ("output", .string($0.output))]) })
    }

    /// A plan's command with `job`'s goal and inputs substituted into its argv (`substitute`).
    static func substitute(_ command: CommandSpec, for job: JobRecord) -> CommandSpec {
        var command = command
        command.argv = substitute(command.argv, goal: job.goal, inputs: job.inputs)
        return command
    }

    /// `{goal}` and `{input.NAME}` substituted inside each argv entry, in one pass: a substituted value
    /// is never split, never read by a shell, and never substituted into again (a goal that says
    /// `{input.x}` stays that text). A placeholder naming no input is left as it is. A non-string
    /// input is put in as JSON.
    static func substitute(_ argv: [String], goal: String, inputs: JSON) -> [String] {
        argv.map { arg in
            guard arg.contains("{") else { return arg }
            var out = ""
            var rest = Substring(arg)
            while let open = rest.firstIndex(of: "{") {
                out += rest[..<open]
                let tail = rest[rest.index(after: open)...]
                if let close = tail.firstIndex(of: "}"), let value = value(of: tail[..<close], goal: goal, inputs: inputs) {
                    out += value
                    rest = tail[tail.index(after: close)...]
                } else {
                    out += "{"
                    rest = tail
                }
            }
            return out + rest
        }
    }

    /// What the placeholder `{NAME}` stands for, when it is `goal` or `input.` and a job input.
    private static func value(of name: Substring, goal: String, inputs: JSON) -> String? {
        if name == "goal" { return goal }
        guard name.hasPrefix("input."), case let .object(members) = inputs else { return nil }
        let key = name.dropFirst("input.".count)
        guard let value = members.first(where: { $0.0 == key })?.1 else { return nil }
        return value.stringValue ?? value.encoded
    }

    func complete(_ request: ModelRequest) async throws(ModelCallError) -> ModelReply {
        let outputs = (request.stepOutputs ?? .array([])).encoded
        let result = try await launcher.run(
            spec, cwd: cwd, request: request, files: [("step-outputs.json", outputs)],
            variables: { [("AGENTD_STEP_OUTPUTS", $0.path("step-outputs.json"))] }, outputCap: 64 << 10)
        let summary = result.summary(timeoutSeconds: timeoutSeconds)
        let reason = result.succeeded ? "verifier command passed (exit status 0)" : "verifier command failed: \(summary)"
        let content: JSON = ["verified": .bool(result.succeeded), "reason": .string(reason)]
        return ModelReply(content: content.encoded, raw: launcher.raw(spec, cwd: cwd, result))
    }
}
