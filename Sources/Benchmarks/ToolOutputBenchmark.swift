import Foundation
import Orchestrator
import Runtime
import Store
import Transcript

/// `agentd bench tool-output`: what tool output floods cost the daemon, beside an ordinary job
/// measured in the same run. Each case runs one job on its own fresh `agentd serve` (so the peak RSS
/// is that job's): a scripted actor whose `run_command` calls (unsandboxed: the sandbox is not what is
/// measured) print
///
/// - `baseline`: one short line of text;
/// - `nul-flood`: 16 MiB of NUL bytes, under `tool_output_cap: 8388608`;
/// - `nul-turn`: twenty calls of 128 KiB of NULs each, in one model turn, under the default budgets.
///
/// For each it reports the daemon's peak RSS (`VmHWM`) once the job has finished and again after it
/// has served the job's whole transcript once, the database's size once the daemon has stopped, the bytes of the job's stored
/// events and the largest of them, and the size of the text transcript rendered from them (the
/// transcript must render); the floods also as ratios to the baseline.
public enum ToolOutputBenchmark {
    /// One job's figures.
    public struct Measurement: Sendable {
        public var name: String
        /// After the job; after the transcript too.
        public var jobPeakRSSBytes: Int
        public var peakRSSBytes: Int
        public var databaseBytes: Int
        public var eventBytes: Int
        public var largestEventBytes: Int
        public var transcriptBytes: Int

        var json: JSON {
            .object([
                ("case", .string(name)), ("daemon_peak_rss_job_bytes", .int(jobPeakRSSBytes)),
                ("daemon_peak_rss_bytes", .int(peakRSSBytes)), ("database_bytes", .int(databaseBytes)),
                ("event_bytes", .int(eventBytes)), ("largest_event_bytes", .int(largestEventBytes)),
                ("transcript_bytes", .int(transcriptBytes)),
            ])
        }
    }

    public struct Result: Sendable {
        /// The baseline first, then the floods.
        public var cases: [Measurement]

        public var json: JSON {
            let base = cases[0]
            return .object([
                ("bench", "tool-output"),
                (
                    "cases",
                    .array(
                        cases.map { m in
                            m.json.setting("rss_ratio", .number(ratio(m.peakRSSBytes, base.peakRSSBytes)))
                                .setting("database_ratio", .number(ratio(m.databaseBytes, base.databaseBytes)))
                        })
                ),
            ])
        }
    }

    /// `(name, policy, the argv of each call of the actor's one tool-calling turn)`.
    static let cases: [(String, String, [[String]])] = [
        ("baseline", "{max_attempts: 1}", [["echo", "an ordinary line of output"]]),
        ("nul-flood", "{max_attempts: 1, tool_output_cap: 8388608}", [["head", "-c", "16777216", "/dev/zero"]]),
        ("nul-turn", "{max_attempts: 1}", Array(repeating: ["head", "-c", "131072", "/dev/zero"], count: 20)),
    ]

    public static func run(agentd: String, directory: String, log: (String) -> Void) throws -> Result {
        var measured: [Measurement] = []
        for (name, policy, calls) in cases {
            log("tool-output \(name)…")
            measured.append(try measure(name: name, policy: policy, calls: calls, agentd: agentd, directory: directory + "/" + name))
        }
        return Result(cases: measured)
    }

    private static func measure(name: String, policy: String, calls: [[String]], agentd: String, directory: String) throws
        -> Measurement
    {
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory + "/ws", withIntermediateDirectories: true)
        let socket = directory + "/agentd.sock"
        let db = directory + "/agentd.db"
        let plan = directory + "/plan.yaml"
        try planText(policy: policy, calls: calls, workspace: directory + "/ws").write(toFile: plan, atomically: true, encoding: .utf8)
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: agentd)
        daemon.arguments = ["serve", "--socket", socket, "--db", db, "--log-level", "warning"]
        daemon.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try daemon.run()
        defer { if daemon.isRunning { daemon.terminate() } }
        let client = try W1Benchmark.connect(socket: socket, daemon: daemon)
        let submitted: JSON
        let finished: JSON
        var events: [JSON] = []
        var job: JSON = .null
        var jobRSS = 0
        do {
            submitted = try client.call(.submit(SubmitParams(planPath: plan, goal: "bench \(name)")))
            let id = submitted["id"]?.stringValue ?? ""
            finished = try client.call(.wait(JobIDParams(id: id)))
            jobRSS = W1Benchmark.peakRSS(pid: daemon.processIdentifier)
            var after = 0
            while true {
                let page = try TranscriptPage(json: try client.call(.transcript(TranscriptParams(id: id, afterSeq: after))))
                if after == 0 { job = page.job.json }
                events += page.events
                guard let next = page.nextAfterSeq else { break }
                after = next
            }
        } catch {
            throw BenchmarkFailure(description: "\(name): \(error)")
        }
        guard finished["status"]?.stringValue == "succeeded" else {
            throw BenchmarkFailure(description: "\(name): the job did not succeed: \(finished.encoded)")
        }
        let rss = W1Benchmark.peakRSS(pid: daemon.processIdentifier)
        let transcript = TranscriptModel.render(job: job, events: events, format: .text)
        daemon.terminate()
        daemon.waitUntilExit()
        let database = try Database(path: db, readOnly: true)
        let sizes = try database.query("SELECT coalesce(sum(length(payload)), 0), coalesce(max(length(payload)), 0) FROM events")[0]
        return Measurement(
            name: name, jobPeakRSSBytes: jobRSS, peakRSSBytes: rss,
            databaseBytes: W1Benchmark.fileSize(db) + W1Benchmark.fileSize(db + "-wal"),
            eventBytes: Int(sizes[0].int ?? 0), largestEventBytes: Int(sizes[1].int ?? 0), transcriptBytes: transcript.utf8.count)
    }

    /// A fixed-step plan whose scripted actor makes `calls` in its first turn, then answers.
    static func planText(policy: String, calls: [[String]], workspace: String) -> String {
        let list = calls.map { argv in
            "{name: run_command, arguments: {argv: \(JSON.array(argv.map(JSON.string)).encoded)}}"
        }.joined(separator: ", ")
        return """
            name: bench-tool-output
            workspace: \(JSON.string(workspace).encoded)
            models:
              s:
                backend: scripted
                script:
                  actor: [{turn: 0, reply: {tool_calls: [\(list)]}}, {turn: 1, reply: {output: done}}]
                  critic: [{reply: {verdict: pass, score: 1, feedback: ok}}]
                  verifier: [{reply: {verified: true, reason: done}}]
            roles:
              actor: {model: s, prompt: "Run the commands.", tools: [run_command]}
              critic: {model: s, prompt: c}
              verifier: {model: s, prompt: v}
            steps: [run the commands]
            sandbox: false
            policy: \(policy)
            """
    }
}

private func ratio(_ value: Int, _ base: Int) -> Double {
    base > 0 ? (Double(value) / Double(base) * 100).rounded() / 100 : 0
}
