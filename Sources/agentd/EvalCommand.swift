import ArgumentParser
import Evaluation
import Foundation
import Orchestrator

#if canImport(Glibc)
    import Glibc
#endif

/// `agentd eval`: runs a suite's tasks as real jobs under each plan (arm) and reports verified success
/// and its cost per arm, judged by the suite's own checks (docs/eval.md).
struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a suite's tasks as jobs under each plan and report verified success, cost and the critic's errors per plan.",
        discussion: """
            Resumable: run the same command again after an interruption and it carries on (each job has an \
            idempotency key; judged runs are kept in DIR/state.jsonl). Markdown on stdout, JSON with --json, \
            an HTML page with -o. See docs/eval.md.
            """)

    @Argument(help: "The suite: a directory with tasks.jsonl (e.g. evals/instructions).")
    var suite: String

    @Option(help: "The arms: plan files, comma-separated (e.g. evals/arms/single.yaml,evals/arms/feedback.yaml).")
    var plans: String

    @Option(help: "Repetitions of every task under every arm.")
    var reps = 1

    @Option(help: "Only these task ids, comma-separated.")
    var tasks: String?

    @Option(help: "Only the first N tasks (after --tasks).")
    var limit: Int?

    @Option(help: "Jobs in flight at once.")
    var concurrency = 2

    @Option(name: .customLong("run"), help: "A name for this eval: a new name runs every job afresh, the same name resumes.")
    var runName = "default"

    @Option(help: "Where the eval keeps its state and the tasks' workspaces (default: agentd-eval/SUITE-RUN).")
    var dir: String?

    @Option(help: "Seconds to keep trying while the daemon is away (restarting, killed) before giving up.")
    var daemonWait = 300.0

    @Flag(help: "Print the report as JSON instead of Markdown.")
    var json = false

    @Option(name: [.short, .customLong("output")], help: "Also write the report as one self-contained HTML page to this file.")
    var output: String?

    @Flag(help: "No progress bar on stderr.")
    var quiet = false

    @OptionGroup var socket: SocketOption

    func validate() throws {
        if reps < 1 { throw ValidationError("--reps must be at least 1") }
        if concurrency < 1 { throw ValidationError("--concurrency must be at least 1") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        if daemonWait < 0 { throw ValidationError("--daemon-wait must not be negative") }
    }

    mutating func run() throws {
        var loaded = try failing { () throws -> EvalSuite in try EvalSuite.load(Paths.absolute(suite)) }
        if let tasks {
            let wanted = tasks.split(separator: ",").map(String.init)
            for id in wanted where !loaded.tasks.contains(where: { $0.id == id }) {
                try failing { throw CLIFailure("--tasks: the suite \(loaded.name) has no task '\(id)'", code: 2) }
            }
            loaded.tasks = loaded.tasks.filter { wanted.contains($0.id) }
        }
        if let limit { loaded.tasks = Array(loaded.tasks.prefix(limit)) }
        let suiteValue = loaded
        let arms = try failing { () throws -> [EvalArm] in
            try plans.split(separator: ",").map { (path) throws(EvalError) in try EvalArm.load(Paths.absolute(String(path))) }
        }
        if arms.isEmpty { try failing { throw CLIFailure("--plans names no plan", code: 2) } }
        var names = Set<String>()
        for arm in arms where !names.insert(arm.name).inserted {
            try failing {
                throw CLIFailure("two arms are named '\(arm.name)': arms are named after their plan files, which must differ", code: 2)
            }
        }
        let directory = Paths.absolute(dir ?? "agentd-eval/\(suiteValue.name)-\(runName)")
        let state = try failing { () throws -> EvalState in try EvalState(path: directory + "/state.jsonl") }
        let bar = ProgressBar(enabled: !quiet)
        let runner = EvalRunner(
            socketPath: socket.path, suite: suiteValue, arms: arms, reps: reps, run: runName, state: state, workDirectory: directory,
            concurrency: concurrency, daemonWait: daemonWait, progress: { bar.show($0) })
        // Fail early, with the usual message, when no daemon answers at all.
        _ = try socket.connect()
        let results = try failing { () throws -> [EvalResult] in try runner.run() }
        bar.finish()
        let report = EvalReport(
            suite: suiteValue.name, tasks: suiteValue.tasks.count, reps: reps, armNames: arms.map(\.name), results: results)
        if let output {
            let path = Paths.absolute(output)
            try failing {
                do {
                    try report.html.write(toFile: path, atomically: true, encoding: .utf8)
                } catch {
                    throw CLIFailure("cannot write \(path): \(error.localizedDescription)")
                }
            }
        }
        emitRaw(json ? report.json.encoded + "\n" : report.markdown)
    }
}

/// The eval's progress on stderr: a bar redrawn in place on a terminal, a line per judged run elsewhere.
final class ProgressBar: @unchecked Sendable {
    private let enabled: Bool
    private let terminal = isatty(2) == 1
    private var drawn = false

    init(enabled: Bool) {
        self.enabled = enabled
    }

    /// Called by the runner under its lock, so one call at a time.
    func show(_ p: EvalRunner.Progress) {
        guard enabled else { return }
        let width = 30
        let filled = p.total == 0 ? width : p.done * width / p.total
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        var line = "[\(bar)] \(p.done)/\(p.total)"
        if p.resumed > 0 { line += " (\(p.resumed) resumed)" }
        if let r = p.latest { line += "  \(r.arm) \(r.task)#\(r.rep + 1) \(r.verified ? "verified" : "not verified")" }
        if terminal {
            writeError("\r\u{1B}[K" + line)
            drawn = true
        } else if p.latest != nil || p.resumed > 0 {
            writeError(line + "\n")
        }
    }

    func finish() {
        if enabled && drawn { writeError("\n") }
    }

    private func writeError(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress!, bytes.count) }
    }
}
