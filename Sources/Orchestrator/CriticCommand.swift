import Agents
import Runtime
import Store

/// The critic as a command: its exit status is the verdict (0 = pass, score 1; anything else = fail,
/// score 0) and what it printed is the feedback the rerun reads. Runs as the critic agent's backend, so
/// its request and verdict are recorded like a model critic's; started like every plan command
/// (`CommandLauncher`), in the sandbox unless the plan or the command opts out.
///
/// Per call the command gets, besides the workspace:
/// - `AGENTD_STEP_OUTPUT`: the path of a file holding exactly the output it judges (in a private
///   directory of the call's, `CallInputs`, bound read-only into the sandbox, removed afterwards);
/// - `AGENTD_STEP`: the step's text; `AGENTD_STEP_INDEX`: the step's number from 1;
///   `AGENTD_ATTEMPT`: the attempt's number from 1.
///
/// The feedback is stdout followed by stderr, at most `feedbackCap` bytes (cut on a character
/// boundary, with a note saying so); when the command printed nothing it says how the command ended.
/// A command that times out or is killed fails the attempt with feedback saying so (a juror's call
/// fails instead: it gave no verdict). At a gate, an
/// approving command may also propose changed arguments and a confidence (`gateAnswer`).
struct CriticCommand: ModelBackend {
    let loop: EventLoop
    /// The plan's command, its argv substituted.
    let spec: CommandSpec
    let cwd: String?
    let launcher: CommandLauncher
    /// As a juror, a command that timed out or was killed by a signal gave no verdict: the call
    /// fails (`timeout`, `exit`) and the jury counts an error, not a fail vote.
    var juror = false

    /// How much of the command's output becomes the feedback.
    static let feedbackCap = 8192

    /// The recorded request of a command critic: the argv it runs, the step's text and the output to
    /// judge, each its own message (the output exactly as the file holds it).
    /// At a gate (`gate` set) the "output" is the proposed call, `{"tool": …, "arguments": …}`, and
    /// the command also gets `AGENTD_GATE`, the gate's id: a pass lets the call run, a fail blocks it.
    static func request(
        _ spec: CommandSpec, jobID: String, goal: String, steps: [String], index: Int, attempt: Int, replan: Int, output: String,
        gate: String? = nil
    ) -> ModelRequest {
        var messages = [
            ChatMessage(role: "user", content: "run \(JSON.array(spec.argv.map(JSON.string)).encoded)"),
            ChatMessage(role: "user", content: steps[index]),
            ChatMessage(role: "user", content: output),
        ]
        if let gate { messages.append(ChatMessage(role: "user", content: "gate \(gate)")) }
        var context = CallContext(
            jobID: jobID, role: .critic, step: index, attempt: attempt, replan: replan, reask: 0, hasFeedback: false, goal: goal)
        context.gate = gate
        return ModelRequest(model: "command", messages: messages, temperature: 0, responseSchema: nil, context: context)
    }

    func complete(_ request: ModelRequest) async throws(ModelCallError) -> ModelReply {
        guard request.messages.count == 3 || request.messages.count == 4 else {
            throw ModelCallError(.configuration, "internal: not a command critic's request")
        }
        let step = request.messages[1].content
        let output = request.messages[2].content
        let index = (request.context.step ?? 0) + 1
        let attempt = (request.context.attempt ?? 0) + 1
        let gate = request.context.gate
        // A candidate with its own copy of the workspace is judged in that copy.
        var (launcher, cwd) = (self.launcher, self.cwd)
        if let copy = request.workspace, case let .success(root) = await launcher.prepareWorkspace() {
            cwd = cwd.map { Self.rebase($0, from: root, configured: launcher.workspace, to: copy) }
            launcher = launcher.working(in: .success(copy), copyOf: nil)
        }
        let result = try await launcher.run(
            spec, cwd: cwd, request: request, files: [("step-output", output)],
            variables: {
                [
                    ("AGENTD_STEP_OUTPUT", $0.path("step-output")), ("AGENTD_STEP", step), ("AGENTD_STEP_INDEX", String(index)),
                    ("AGENTD_ATTEMPT", String(attempt)),
                ] + (gate.map { [("AGENTD_GATE", $0)] } ?? [])
            }, outputCap: 64 << 10)
        if juror, result.cancelled || result.timedOut || result.termSignal != 0 {
            let stderr = result.stderrText.isEmpty ? nil : result.stderrText
            throw ModelCallError(
                result.cancelled ? .cancelled : result.timedOut ? .timeout : .exit,
                "the juror command gave no verdict: \(result.summary(timeoutSeconds: spec.timeoutSeconds))",
                stderr: stderr)
        }
        var verdict = Verdict(
            outcome: result.succeeded ? .pass : .fail, score: result.succeeded ? 1 : 0,
            feedback: Self.feedback(result, timeoutSeconds: spec.timeoutSeconds))
        if gate != nil, result.succeeded, let answer = Self.gateAnswer(result.stdout) {
            verdict.arguments = answer["arguments"]?.objectValue.map { _ in answer["arguments"]!.encoded }
            verdict.confidence = answer["confidence"]?.doubleValue.map { min(1, max(0, $0)) }
        }
        return ModelReply(content: verdict.json.encoded, raw: launcher.raw(spec, cwd: cwd, result))
    }

    /// `path` moved from the job's workspace (`root`, its real path, or `configured`, as the plan
    /// names it) into `copy`; a path outside the workspace stays as it is.
    static func rebase(_ path: String, from root: String, configured: Result<String, ToolProblem>, to copy: String) -> String {
        var bases = [root]
        if case let .success(named) = configured { bases.append(named) }
        for base in bases {
            let trimmed = base.hasSuffix("/") && base.count > 1 ? String(base.dropLast()) : base
            if path == trimmed { return copy }
            if path.hasPrefix(trimmed + "/") { return copy + path.dropFirst(trimmed.count) }
        }
        return path
    }

    /// At a gate, an approving command may end its stdout with one JSON object line,
    /// `{"arguments": {…}, "confidence": 0.9}` (either member optional): the arguments to run instead
    /// (reviewed again by the same rule) and how sure it is (for `critic_then_human`).
    static func gateAnswer(_ stdout: [UInt8]) -> JSON? {
        let text = String(decoding: stdout, as: UTF8.self)
        guard let last = text.split(separator: "\n").last(where: { !$0.allSatisfy(\.isWhitespace) }),
            let value = try? JSON.parse(String(last)), value.objectValue != nil,
            value["arguments"] != nil || value["confidence"] != nil
        else { return nil }
        return value
    }

    /// stdout then stderr, capped at `feedbackCap` bytes; a short account of the run when both are empty.
    static func feedback(_ result: ProcessResult, timeoutSeconds: Double) -> String {
        let printed = result.stdout + result.stderr
        let ending = result.succeeded ? "" : "the critic command failed: \(result.summary(timeoutSeconds: timeoutSeconds))"
        guard printed.contains(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x0D && $0 != 0x09 }) else {
            return result.succeeded ? "the critic command passed (exit status 0)" : ending
        }
        var cut = printed.count > feedbackCap ? Array(printed.prefix(feedbackCap)) : printed
        // Back off to the start of a character, so the cut never leaves half of one.
        if printed.count > feedbackCap {
            while let last = cut.last, last & 0xC0 == 0x80 { cut.removeLast() }
            if let last = cut.last, last >= 0xC0 { cut.removeLast() }
        }
        var text = String(decoding: cut, as: UTF8.self)
        if printed.count > feedbackCap || result.stdoutTruncated || result.stderrTruncated {
            text += "\n[output cut at \(feedbackCap) bytes]"
        }
        if result.timedOut || result.termSignal != 0 { text += "\n[\(ending)]" }
        return text
    }
}
