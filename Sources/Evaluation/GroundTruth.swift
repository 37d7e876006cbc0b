import Foundation
import Store

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a suite's checks — the ground truth, never the critic — the way a command verifier and a
/// command critic are run (plans/README.md): in the suite's directory, with the outputs in files named
/// by `AGENTD_STEP_OUTPUTS` / `AGENTD_STEP_OUTPUT` and the workspace at `AGENTD_WORKSPACE`. The checks
/// run in the eval's own process tree, unsandboxed, as the eval's user: a code suite's check runs code
/// the model wrote, so run such suites where that is acceptable.
///
/// Blocking (it waits for the check); call it from a worker thread, never from an event loop.
public struct GroundTruth: Sendable {
    public let suite: EvalSuite
    /// Where the checks' input files and workspace snapshots are made (and removed afterwards).
    public let scratch: String

    public init(suite: EvalSuite, scratch: String) {
        self.suite = suite
        self.scratch = scratch
    }

    /// What one check said.
    public struct Judgement: Sendable, Equatable {
        public var correct: Bool
        /// The start of what the check printed, for the report's notes.
        public var note: String
    }

    /// The job's result: its final step outputs (and its workspace, `workspace`) under the task's check.
    /// A job that did not succeed delivered nothing, so it is not correct and the check does not run.
    public func final(_ task: EvalTask, job: RecordedJob, workspace: String?) -> Judgement {
        guard job.status == .succeeded else {
            return Judgement(correct: false, note: "the job \(job.status.rawValue): \(job.reason ?? "")")
        }
        return withScratch { dir in
            let outputs = JSON.array(job.finalOutputs.map { .object([("step", .string($0.step)), ("output", .string($0.output))]) })
            write(outputs.encoded, to: dir + "/step-outputs.json")
            var env = ["AGENTD_STEP_OUTPUTS": dir + "/step-outputs.json"]
            env["AGENTD_WORKSPACE"] = workspace ?? makeEmpty(dir + "/workspace")
            return run(task.check, env: env, dir: dir, timeout: task.timeoutSeconds)
        }
    }

    /// One attempt's output under the task's step check (else its check, the output as the only one),
    /// in a snapshot of the workspace as that attempt left it: the task's fixture with every file
    /// the job's `write_file` calls wrote up to and including this attempt, read from the record
    /// (of sampled attempts, only the chosen candidates' and its own).
    /// (Changes a `run_command` made are not in the record, so not in the snapshot.)
    public func attempt(_ task: EvalTask, job: RecordedJob, at position: Int) -> Judgement {
        let attempt = job.attempts[position]
        guard let output = attempt.output else { return Judgement(correct: false, note: "no output") }
        return withScratch { dir in
            let workspace = dir + "/workspace"
            if let fixture = task.workspace {
                try? FileManager.default.copyItem(atPath: suite.directory + "/" + fixture, toPath: workspace)
            } else {
                _ = makeEmpty(workspace)
            }
            // A candidate of a sampled attempt worked in its own copy: its siblings' files, and those of
            // candidates not chosen, never reached the workspace.
            for earlier in job.attempts[...position] where earlier == attempt || !earlier.sampled || earlier.chosen {
                for file in earlier.writes where !file.path.hasPrefix("/") && !file.path.split(separator: "/").contains("..") {
                    let path = workspace + "/" + file.path
                    try? FileManager.default.createDirectory(
                        atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
                    write(file.content, to: path)
                }
            }
            write(output, to: dir + "/step-output")
            let outputs = JSON.array([.object([("step", .string(attempt.stepText)), ("output", .string(output))])])
            write(outputs.encoded, to: dir + "/step-outputs.json")
            let env = [
                "AGENTD_STEP_OUTPUT": dir + "/step-output", "AGENTD_STEP_OUTPUTS": dir + "/step-outputs.json",
                "AGENTD_STEP": attempt.stepText, "AGENTD_STEP_INDEX": String(attempt.step + 1),
                "AGENTD_ATTEMPT": String(attempt.attempt + 1),
                "AGENTD_WORKSPACE": workspace,
            ]
            return run(task.stepCheck ?? task.check, env: env, dir: dir, timeout: task.timeoutSeconds)
        }
    }

    private func withScratch(_ body: (String) -> Judgement) -> Judgement {
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        var template = Array((scratch + "/check.XXXXXX").utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            return Judgement(correct: false, note: "the eval could not make a directory in \(scratch): \(String(cString: strerror(errno)))")
        }
        let dir = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        return body(dir)
    }

    private func makeEmpty(_ path: String) -> String {
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    private func write(_ text: String, to path: String) {
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }

    /// Runs `argv` in the suite's directory, its output in a file (no pipe to fill), killed after
    /// `timeout` seconds. Exit status 0 is correct.
    private func run(_ argv: [String], env: [String: String], dir: String, timeout: Double) -> Judgement {
        let out = dir + "/check.out"
        FileManager.default.createFile(atPath: out, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: out) else { return Judgement(correct: false, note: "cannot write \(out)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        process.currentDirectoryURL = URL(fileURLWithPath: suite.directory)
        process.environment = ProcessInfo.processInfo.environment.merging(env) { $1 }
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            try? handle.close()
            return Judgement(correct: false, note: "the check \(argv[0]) could not start: \(error)")
        }
        try? handle.close()
        let deadline = Date().addingTimeInterval(timeout)
        var timedOut = false
        while process.isRunning {
            if Date() > deadline {
                kill(process.processIdentifier, SIGKILL)
                timedOut = true
                break
            }
            usleep(2000)
        }
        process.waitUntilExit()
        let printed = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        let note = timedOut ? "the check timed out after \(timeout)s" : String(printed.prefix(300))
        return Judgement(correct: !timedOut && process.terminationReason == .exit && process.terminationStatus == 0, note: note)
    }
}
