import ArgumentParser
import Foundation
import Orchestrator
import Store
import Transcript

#if canImport(Glibc)
    import Glibc
#endif

/// What defines a job on the command line: the plan, the goal and the inputs (`submit`, `run`).
struct JobArguments: ParsableArguments {
    @Argument(help: "The plan file (YAML).")
    var plan: String

    @Option(help: "The job's goal (default: the plan's description).")
    var goal: String?

    @Option(name: .customLong("input"), help: "An input as NAME=VALUE; repeatable.")
    var inputs: [String] = []

    func validate() throws {
        for input in inputs where !input.contains("=") {
            throw ValidationError("--input takes NAME=VALUE, got '\(input)'")
        }
    }

    /// The inputs as a JSON object, in the order given.
    var inputObject: JSON {
        .object(
            inputs.map { input in
                let parts = input.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                return (String(parts[0]), .string(String(parts[1])))
            })
    }
}

struct Submit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queue a job from a plan file. With --wait or --watch, exit 0 only if the job succeeded.")

    @OptionGroup var job: JobArguments

    @Option(help: "A key that makes resubmission safe: the same key returns the same job.")
    var idempotencyKey: String?

    @Flag(help: "Wait until the job finishes.")
    var wait = false

    @Flag(help: "Show live progress until the job finishes.")
    var watch = false

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var socket: SocketOption

    func validate() throws {
        if wait && watch { throw ValidationError("use --wait or --watch, not both") }
    }

    mutating func run() throws {
        let client = try socket.connect()
        let path = Paths.absolute(job.plan)
        var params = SubmitParams(
            planPath: path, goal: job.goal, inputs: job.inputObject, cwd: Paths.currentDirectory(), idempotencyKey: idempotencyKey)
        let submitted = try failing { () throws -> JSON in
            do {
                return try client.call(.submit(params))
            } catch let error as ClientError
                where error.rpc?.code == RPCError.Code.permissionDenied.rawValue && error.message.contains("rule: submitters.plan_dirs")
            {
                // A user other than the daemon's owner submits a plan outside the plan directories as
                // its text, read here with the user's own rights.
                let text = try String(contentsOfFile: path, encoding: .utf8)
                params.planPath = nil
                params.planText = text
                params.planName = path
                return try client.call(.submit(params))
            }
        }
        let result = try failing { () throws -> SubmitResult in try SubmitResult(json: submitted) }
        let id = result.job.id
        if watch {
            if !json { emit("job \(id) \(result.created ? "queued" : "(already submitted with this key)")") }
            try watchJob(client, id: id, json: json)
        } else if wait {
            let final = try failing { try client.call(.wait(JobIDParams(id: id))) }
            try report(final, json: json)
        } else if json {
            emit(submitted.encoded)
        } else {
            emit(id)
        }
    }
}

/// Streams a job's progress; exits non-zero unless it succeeded.
func watchJob(_ client: RPCClient, id: String, json: Bool, since: Int = 0) throws {
    var printer = ProgressPrinter()
    let final = try failing {
        try client.call(.watch(WatchParams(id: id, since: since))) { note in
            guard let event = note["params"] else { return }
            if json {
                emit(event.encoded)
            } else {
                for line in printer.lines(for: event) { emit(line) }
            }
        }
    }
    try report(final, json: json, quietJSON: json)
}

/// Prints a finished job (`result`, a job object) and sets the exit status: 0 only when it succeeded.
func report(_ result: JSON, json: Bool, quietJSON: Bool = false) throws {
    let job = try failing { () throws -> WireJob in try WireJob(json: result) }
    if json {
        if !quietJSON { emit(result.encoded) }
    } else {
        var line = "job \(job.id) \(job.status.rawValue)"
        if let reason = job.reason { line += ": \(reason)" }
        emit(line)
    }
    if job.status != .succeeded { throw ExitCode(1) }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ls", abstract: "List jobs, newest last.")

    @Option(help: "Only jobs in this state: queued, running, awaiting_approval, succeeded, failed, cancelled.")
    var status: String?

    @Option(help: "How many of the newest jobs.")
    var limit = 50

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var socket: SocketOption

    mutating func run() throws {
        let client = try socket.connect()
        var params: JSON = ["limit": .int(limit)]
        // An unknown status is sent as given: the daemon's error names the states it knows.
        if let status { params = params.setting("status", .string(status)) }
        let result = try failing { try client.call(RPCMethod.jobList.rawValue, params) }
        let jobs = result["jobs"]?.arrayValue ?? []
        if json {
            emit(JSON.array(jobs).encoded)
            return
        }
        let listed = try failing { () throws -> [WireJob] in try jobs.map { (job) throws(WireShapeError) in try WireJob(json: job) } }
        emit("\(pad("ID", 19)) \(pad("STATUS", 18)) \(pad("PLAN", 12)) GOAL")
        for job in listed {
            emit("\(pad(job.id, 19)) \(pad(job.status.rawValue, 18)) \(pad(job.plan, 12)) \(oneLine(job.goal, 60))")
        }
    }
}

struct Show: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one job.")

    @Argument(help: "The job id.")
    var job: String

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var socket: SocketOption

    mutating func run() throws {
        let client = try socket.connect()
        let result = try failing { try client.call(.get(JobIDParams(id: job))) }
        if json {
            emit(result.encoded)
            return
        }
        let details = try failing { () throws -> JobDetails in try JobDetails(json: result) }
        let shown = details.job
        let fields: [(String, String?)] = [
            ("id", shown.id), ("plan", shown.plan), ("goal", shown.goal), ("status", shown.status.rawValue), ("reason", shown.reason),
            ("idempotency_key", shown.idempotencyKey),
        ]
        for case let (key, value?) in fields { emit("\(pad(key + ":", 17)) \(value)") }
        for (key, ms) in [("created_at", shown.createdAt), ("started_at", shown.startedAt), ("finished_at", shown.finishedAt)] {
            if let ms { emit("\(pad(key + ":", 17)) \(formatTime(Double(ms)))") }
        }
        if let start = shown.startedAt, let end = shown.finishedAt { emit("\(pad("duration:", 17)) \(end - start) ms") }
        let roles = details.usage.keys.sorted()
        let total = details.total
        if !roles.isEmpty {
            emit(
                "\(pad("completed calls:", 17)) \(total.calls) ("
                    + roles.map { "\($0) \(details.usage[$0]!.calls)" }.joined(separator: ", ") + ")")
        }
        if total.inputTokens + total.outputTokens > 0 {
            let perRole = roles.compactMap { role -> String? in
                let u = details.usage[role]!
                return u.inputTokens + u.outputTokens > 0 ? "\(role) \(u.inputTokens + u.outputTokens)" : nil
            }
            emit("\(pad("tokens:", 17)) \(total.inputTokens) in, \(total.outputTokens) out (\(perRole.joined(separator: ", ")))")
        }
        if let cost = total.costUSD { emit("\(pad("cost:", 17)) $\(String(format: "%.4f", cost))") }
        let links = details.links
        if let original = links.retryOf {
            emit(
                "\(pad("retry of:", 17)) \(original) from step \(links.fromStep ?? 1) (\(links.reusedCalls) call\(links.reusedCalls == 1 ? "" : "s") reused)"
            )
        }
        for retry in links.retries { emit("\(pad("retried as:", 17)) \(retry.job) from step \(retry.fromStep)") }
        if case let .object(inputs) = shown.inputs, !inputs.isEmpty {
            emit("inputs:")
            for (k, v) in inputs { emit("  \(k) = \(v.stringValue ?? v.encoded)") }
        }
    }
}

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow a job's progress live; exit 0 only if it succeeded.")

    @Argument(help: "The job id.")
    var job: String

    @Option(help: "Resume after this event sequence number.")
    var since = 0

    @Flag(help: "Print each event as JSON.")
    var json = false

    @OptionGroup var socket: SocketOption

    mutating func run() throws {
        let client = try socket.connect()
        try watchJob(client, id: job, json: json, since: since)
    }
}

struct Cancel: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Cancel a job that has not finished. A job that had already finished is left as it is, and the exit status is 1.")

    @Argument(help: "The job id.")
    var job: String

    @Flag(help: "Print JSON (the job object, whether or not this cancelled it).")
    var json = false

    @OptionGroup var socket: SocketOption

    mutating func run() throws {
        let client = try socket.connect()
        // job.cancel returns a finished job unchanged, so only its state before the call tells
        // "cancelled now" from "was already over" (a job cancelled earlier included).
        let before = try failing { () throws -> WireJob in try WireJob(json: try client.call(.get(JobIDParams(id: job)))) }
        let after: WireJob
        if before.status.isTerminal {
            after = before
        } else {
            after = try failing { () throws -> WireJob in try WireJob(json: try client.call(.cancel(JobIDParams(id: job)))) }
        }
        if json { emit(after.json.encoded) }
        if before.status.isTerminal {
            try failing { throw CLIFailure("job \(job) had already finished (\(before.status.rawValue)); nothing to cancel") }
        } else if after.status != .cancelled {
            try failing { throw CLIFailure("job \(job) finished (\(after.status.rawValue)) before the cancel reached it") }
        } else if !json {
            emit("job \(job) cancelled")
        }
    }
}

struct Retry: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a finished job again as a new job, from one of its steps: the calls before that step are answered from its record.",
        discussion: """
            The new job has the job's plan, inputs and working directory, and its goal unless --goal gives \
            another. Each call before the step is reused while its request is the same as the recorded \
            one; the first that differs (a new goal changes every prompt that quotes it), and everything \
            after it, runs live. With --wait or --watch, exit 0 only if the new job succeeded.
            """)

    @Argument(help: "The job to retry (succeeded, failed or cancelled).")
    var job: String

    @Option(help: "The step to run live from, counted from 1 (default: the step where the job stopped).")
    var fromStep: Int?

    @Option(help: "A new goal for the new job (default: the job's goal).")
    var goal: String?

    @Flag(help: "Wait until the new job finishes.")
    var wait = false

    @Flag(help: "Show live progress until the new job finishes.")
    var watch = false

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var socket: SocketOption

    func validate() throws {
        if wait && watch { throw ValidationError("use --wait or --watch, not both") }
        if let fromStep, fromStep < 1 { throw ValidationError("--from-step counts steps from 1, got \(fromStep)") }
    }

    mutating func run() throws {
        let client = try socket.connect()
        let answer = try failing { try client.call(.retry(RetryParams(id: job, fromStep: fromStep, goal: goal))) }
        let result = try failing { () throws -> RetryResult in try RetryResult(json: answer) }
        let id = result.job.id
        if watch {
            if !json { emit("job \(id) queued: a retry of \(result.retryOf) from step \(result.fromStep)") }
            try watchJob(client, id: id, json: json)
        } else if wait {
            let final = try failing { try client.call(.wait(JobIDParams(id: id))) }
            try report(final, json: json)
        } else if json {
            emit(answer.encoded)
        } else {
            emit(id)
        }
    }
}

struct Transcript: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print everything a job's agents did, from the log: readable text, Markdown, JSON lines, or one HTML page.",
        discussion: """
            Asks the daemon (job.transcript with the format) when one answers on --socket, else renders \
            from --db itself, read-only; the output is the same.
            """)

    @Argument(help: "The job id.")
    var job: String

    @Option(help: "text (readable), md (Markdown), jsonl (one JSON object per event) or html (one self-contained page).")
    var format: TranscriptFormat = .text

    @Option(name: [.short, .customLong("output")], help: "Write to this file (atomically) instead of stdout.")
    var output: String?

    @OptionGroup var socket: SocketOption
    @OptionGroup var database: DatabaseOption

    mutating func run() throws {
        let (job, format) = (job, format)
        let reply = try DaemonOrDatabase(socket: socket, database: database).answer(
            .transcript(TranscriptParams(id: job, format: format))
        ) { path in
            let db = try DaemonOrDatabase.openReadOnly(path)
            guard let record = try db.job(job) else { throw EngineError.jobNotFound(job) }
            let events = try db.events(jobID: job).map(\.json)
            let text = TranscriptModel.render(job: WireJob(record).json, events: events, format: format)
            return .object([("format", .string(format.rawValue)), ("text", .string(text))])
        }
        let text = try failing { () throws -> String in
            guard let text = reply["text"]?.stringValue else { throw CLIFailure("the transcript result has no 'text'") }
            return text
        }
        if let output {
            let path = Paths.absolute(output)
            try failing {
                do {
                    try text.write(toFile: path, atomically: true, encoding: .utf8)
                } catch {
                    throw CLIFailure("cannot write \(path): \(error.localizedDescription)")
                }
            }
        } else {
            emitRaw(text)
        }
    }
}

extension TranscriptFormat: ExpressibleByArgument {}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Show whether the daemon runs and takes jobs, the state of its storage (ok, or degraded by a full disk or an I/O error), and its figures."
    )

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var socket: SocketOption

    mutating func run() throws {
        let client = try socket.connect()
        let status = try failing { try client.call(.status) }
        if json {
            emit(status.encoded)
            return
        }
        let shown = try failing { () throws -> DaemonStatus in try DaemonStatus(json: status) }
        emit("agentd \(shown.version) pid \(shown.pid) on \(shown.socket)")
        let storage = shown.storage
        emit("accepting jobs: \(shown.accepting ? "yes" : storage.degraded ? "no (storage unavailable)" : "no")")
        emit("running \(shown.running), queued \(shown.queued), watchers \(shown.watchers)")
        emit("jobs: " + JobStatus.allCases.map { "\($0.rawValue) \(shown.jobs[$0] ?? 0)" }.joined(separator: ", "))
        emit("store: \(shown.store.path), \(shown.store.commits) commits, \(shown.store.events) events written")
        if let error = shown.store.lastError { emit("last storage error: \(error)") }
        if let error = storage.error {
            let since = storage.since.map { formatTime(Double($0)) } ?? "?"
            emit("storage: DEGRADED since \(since): \(error)")
            emit("  no new jobs until writes succeed again (probed every second); \(storage.stoppedJobs) stopped jobs resume then")
        } else {
            emit("storage: ok")
        }
        // The configuration is the daemon's own encoding (docs/config.md), shown as it reads.
        let config = shown.config
        let loaded = config["loaded_at"]?.doubleValue.map(formatTime) ?? "?"
        emit("config: \(config["file"]?.stringValue ?? "no file") (generation \(config["generation"]?.intValue ?? 0), loaded \(loaded))")
        let limits = config["limits"]
        emit(
            "limits: max running \(config["max_running"]?.intValue ?? 0), queued \(limits?["max_queued_jobs"]?.intValue ?? 0) (per client \(limits?["max_queued_jobs_per_client"]?.intValue ?? 0)), requests in flight per connection \(limits?["max_requests_in_flight_per_connection"]?.intValue ?? 0)"
        )
    }
}

func formatTime(_ ms: Double) -> String {
    var t = time_t(ms / 1000)
    var tm = Glibc.tm()
    gmtime_r(&t, &tm)
    let millis = Int(ms.truncatingRemainder(dividingBy: 1000))
    func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    let ms3 = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
    return "\(tm.tm_year + 1900)-\(two(tm.tm_mon + 1))-\(two(tm.tm_mday)) \(two(tm.tm_hour)):\(two(tm.tm_min)):\(two(tm.tm_sec)).\(ms3) UTC"
}
