import Foundation
import Orchestrator
import Runtime
import Store
import Synchronization

/// The W1 critic-retry benchmark (docs/benchmarks.md): jobs of `plans/w1.yaml` submitted over the Unix
/// socket to a real `agentd serve` child process, run by the engine, persisted by the store.
///
/// A run is valid only if afterwards every job is `succeeded` and the store holds exactly 14
/// completed agent calls per job; otherwise `run` throws. The floor — the same rows inserted by a
/// minimal batched loop into the same schema and settings — is measured in the same run.
public enum W1Benchmark {
    public enum Mode: String, Sendable, CaseIterable {
        /// One job after another, each submitted when the previous finished.
        case seq
        /// Every job submitted at once.
        case conc
    }

    public struct Result: Sendable {
        public var mode: Mode
        public var jobs: Int
        public var seconds: Double
        public var latenciesMs: [Double]
        public var peakRSSBytes: Int
        /// User plus system CPU time the daemon used over the whole run.
        public var daemonCPUSeconds: Double
        public var databaseBytes: Int
        public var floor: Floor

        public var jobsPerSecond: Double { Double(jobs) / seconds }
        public var callsPerSecond: Double { Double(jobs * callsPerJob) / seconds }

        public func percentile(_ p: Double) -> Double { nearestRank(latenciesMs, p) }

        public var json: JSON {
            .object([
                ("bench", "w1"), ("mode", .string(mode.rawValue)), ("jobs", .int(jobs)),
                ("seconds", .number(round3(seconds))),
                ("jobs_per_s", .number(round1(jobsPerSecond))), ("calls_per_s", .number(round1(callsPerSecond))),
                ("p50_ms", .number(round3(percentile(50)))), ("p99_ms", .number(round3(percentile(99)))),
                ("daemon_peak_rss_mb", .number(round1(Double(peakRSSBytes) / 1_048_576))),
                ("daemon_cpu_ms_per_job", .number(round3(daemonCPUSeconds * 1000 / Double(max(jobs, 1))))),
                ("db_bytes_per_job", .int(databaseBytes / max(jobs, 1))),
                ("floor_jobs_per_s", .number(round1(floor.jobsPerSecond))),
                ("floor_rows_per_s", .number(round1(floor.rowsPerSecond))),
                ("efficiency", .number(round3(jobsPerSecond / floor.jobsPerSecond))),
                ("complete", true),
            ])
        }
    }

    /// The floor: the same rows written by a bare loop.
    public struct Floor: Sendable {
        public var jobs: Int
        public var rows: Int
        public var seconds: Double
        public var jobsPerSecond: Double { Double(jobs) / seconds }
        public var rowsPerSecond: Double { Double(rows) / seconds }
    }

    public static let callsPerJob = 14

    /// Why a benchmark could not produce its figures.
    public typealias Failure = BenchmarkFailure

    static func goal(_ i: Int) -> String {
        "job \(i): summarise the quarterly report and draft three follow-up actions"
    }

    /// Runs one mode against a fresh daemon in `directory` and checks completeness.
    public static func run(
        mode: Mode, jobs: Int, agentd: String, planPath: String, directory: String, log: (String) -> Void
    ) throws -> Result {
        let dir = directory + "/\(mode.rawValue)"
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let socket = dir + "/agentd.sock"
        let db = dir + "/agentd.db"
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: agentd)
        daemon.arguments = [
            "serve", "--socket", socket, "--db", db, "--log-level", "warning",
            "--max-running", mode == .seq ? "8" : ProcessInfo.processInfo.environment["AGENTD_BENCH_MAX_RUNNING"] ?? "256",
            // Every job is submitted at once by one client: the queue limits must hold them all.
            "--max-queued-jobs", "\(max(100_000, jobs))", "--max-queued-jobs-per-client", "\(max(10_000, jobs))",
        ]
        let daemonLog = FileHandle(forWritingAtPath: "/dev/null")
        daemon.standardOutput = daemonLog
        try daemon.run()
        defer { if daemon.isRunning { daemon.terminate() } }
        let client = try connect(socket: socket, daemon: daemon)

        log("w1 \(mode.rawValue): \(jobs) jobs…")
        let start = monotonicNanos()
        let latencies: [Double]
        switch mode {
        case .seq: latencies = try runSequential(client, jobs: jobs, planPath: planPath)
        case .conc: latencies = try runConcurrent(client, jobs: jobs, planPath: planPath)
        }
        let seconds = Double(monotonicNanos() - start) / 1e9
        let rss = peakRSS(pid: daemon.processIdentifier)
        let daemonCPU = cpuSeconds(pid: daemon.processIdentifier)
        daemon.terminate()
        daemon.waitUntilExit()
        guard daemon.terminationStatus == 0 else {
            throw Failure(description: "the daemon exited with status \(daemon.terminationStatus) after SIGTERM")
        }
        let sample = try checkComplete(db: db, jobs: jobs)
        let bytes = fileSize(db) + fileSize(db + "-wal")
        log("w1 \(mode.rawValue): floor…")
        let floor = try measureFloor(directory: dir, jobs: max(jobs, 1000), sample: sample)
        return Result(
            mode: mode, jobs: jobs, seconds: seconds, latenciesMs: latencies, peakRSSBytes: rss, daemonCPUSeconds: daemonCPU,
            databaseBytes: bytes, floor: floor)
    }

    /// Waits until the freshly started `daemon` answers on `socket` (30 s at most).
    static func connect(socket: String, daemon: Process) throws -> RPCClient {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if !daemon.isRunning { throw Failure(description: "the daemon exited at start (status \(daemon.terminationStatus))") }
            if let client = try? RPCClient(socketPath: socket), (try? client.call(.status)) != nil {
                return client
            }
            usleep(10_000)
        }
        throw Failure(description: "the daemon did not answer on \(socket) within 30 s")
    }

    private static func submitParams(_ i: Int, planPath: String) -> SubmitParams {
        SubmitParams(planPath: planPath, goal: goal(i))
    }

    private static func runSequential(_ client: RPCClient, jobs: Int, planPath: String) throws -> [Double] {
        var latencies: [Double] = []
        latencies.reserveCapacity(jobs)
        for i in 0..<jobs {
            let t0 = monotonicNanos()
            let job = try client.call(.submit(submitParams(i, planPath: planPath)))
            guard let id = job["id"]?.stringValue else { throw Failure(description: "submit returned no id") }
            let done = try client.call(.wait(JobIDParams(id: id)))
            latencies.append(Double(monotonicNanos() - t0) / 1e6)
            let finished = try WireJob(json: done)
            guard finished.status == .succeeded else {
                throw Failure(description: "job \(id) ended \(finished.status.rawValue): \(finished.reason ?? "")")
            }
        }
        return latencies
    }

    /// Every submission written at once by one thread; a second thread reads the replies and asks to
    /// be told when each job finishes. Writes share the connection under a lock.
    private static func runConcurrent(_ client: RPCClient, jobs: Int, planPath: String) throws -> [Double] {
        let writeLock = Mutex(())
        let sentAt = Mutex([UInt64](repeating: 0, count: jobs))
        let failure = Mutex<String?>(nil)
        let writer = Thread {
            for i in 0..<jobs {
                let request = MethodCall.submit(submitParams(i, planPath: planPath)).request(id: .int(i))
                sentAt.withLock { $0[i] = monotonicNanos() }
                do {
                    try writeLock.withLock { _ in try client.writeFrame(request) }
                } catch {
                    failure.withLock { $0 = "\(error)" }
                    return
                }
            }
        }
        writer.start()
        var latencies = [Double](repeating: 0, count: jobs)
        var finished = 0
        while finished < jobs {
            let message = try client.readFrame()
            if let error = message["error"] {
                throw Failure(description: "daemon error: \(error["message"]?.stringValue ?? error.encoded)")
            }
            guard let id = message["id"]?.intValue, let result = message["result"] else { continue }
            if id < jobs {
                guard let jobID = result["id"]?.stringValue else { throw Failure(description: "submit returned no id") }
                let wait: JSON = MethodCall.wait(JobIDParams(id: jobID)).request(id: .int(jobs + id))
                try writeLock.withLock { _ in try client.writeFrame(wait) }
            } else {
                let i = id - jobs
                guard result["status"]?.stringValue == "succeeded" else {
                    throw Failure(description: "job \(result["id"]?.stringValue ?? "?") ended \(result["status"]?.stringValue ?? "?")")
                }
                latencies[i] = Double(monotonicNanos() - sentAt.withLock { $0[i] }) / 1e6
                finished += 1
            }
            if let error = failure.withLock({ $0 }) { throw Failure(description: error) }
        }
        return latencies
    }

    /// One job's 14 (input, output) payload pairs, for the floor to write.
    struct Sample {
        var rows: [(kind: String, role: String?, payload: String)]
    }

    /// Fails unless every job succeeded with exactly 14 completed calls. Returns one job's call rows.
    private static func checkComplete(db path: String, jobs: Int) throws -> Sample {
        let db = try Database(path: path, readOnly: true)
        let succeeded = try db.query("SELECT count(*) FROM jobs WHERE status = 'succeeded'")[0][0].int ?? 0
        let total = try db.query("SELECT count(*) FROM jobs")[0][0].int ?? 0
        guard total == jobs, succeeded == jobs else {
            throw Failure(description: "incomplete run: \(succeeded) of \(total) jobs succeeded, \(jobs) submitted")
        }
        let wrong =
            try db.query(
                """
                SELECT count(*) FROM (SELECT j.id, (SELECT count(*) FROM events e WHERE e.job_id = j.id AND e.kind = 'call.completed') AS n
                FROM jobs j) WHERE n != \(callsPerJob)
                """)[0][0].int ?? -1
        guard wrong == 0 else {
            throw Failure(description: "incomplete run: \(wrong) jobs do not have exactly \(callsPerJob) completed agent calls")
        }
        let rows = try db.query(
            """
            SELECT kind, role, payload FROM events WHERE job_id = (SELECT min(id) FROM jobs)
            AND kind IN ('call.started', 'call.completed') ORDER BY seq
            """)
        return Sample(rows: rows.map { ($0[0].text ?? "", $0[1].text, $0[2].text ?? "") })
    }

    /// The floor: the same call rows (14 inputs and 14 outputs per job, plus the job row) into the same
    /// schema with the same pragmas (WAL, synchronous=NORMAL), prepared statements, one transaction per
    /// 100 jobs.
    static func measureFloor(directory: String, jobs: Int, sample: Sample) throws -> Floor {
        let path = directory + "/floor.db"
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let db = try Database(path: path)
        try Migrations.migrate(db, now: 0)
        let insertJob = try db.prepare(
            "INSERT INTO jobs(id, plan_name, plan, goal, status, created_at) VALUES (?, 'w1', '{}', ?, 'succeeded', 0)")
        let insertEvent = try db.prepare(
            """
            INSERT INTO events(job_id, seq, at, kind, role, step, attempt, call_id, payload) VALUES (?, ?, 0, ?, ?, NULL, NULL, NULL, ?)
            """)
        let start = monotonicNanos()
        var rows = 0
        for batch in stride(from: 0, to: jobs, by: 100) {
            try db.execute("BEGIN")
            for j in batch..<min(batch + 100, jobs) {
                let id = String(format: "F%017d", j)
                try insertJob.run([.text(id), .text(goal(j))])
                for (seq, row) in sample.rows.enumerated() {
                    try insertEvent.run([
                        .text(id), .int(Int64(seq + 1)), .text(row.kind), row.role.map(SQLValue.text) ?? .null, .text(row.payload),
                    ])
                    rows += 1
                }
            }
            try db.execute("COMMIT")
        }
        let seconds = Double(monotonicNanos() - start) / 1e9
        return Floor(jobs: jobs, rows: rows, seconds: seconds)
    }

    static func peakRSS(pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kb = line.split(separator: " ").compactMap { Int($0) }.first ?? 0
            return kb * 1024
        }
        return 0
    }

    /// utime + stime of a process, from /proc.
    static func cpuSeconds(pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return 0 }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command name: state is field 3, utime field 14, stime field 15 (1-based).
        guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return 0 }
        return (utime + stime) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    static func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }
}

private func round1(_ x: Double) -> Double { (x * 10).rounded() / 10 }

/// The `p`th percentile of `values` by the nearest-rank method (0 when there are none); every
/// benchmark reports latencies with it.
func nearestRank(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    return sorted[min(sorted.count - 1, max(0, Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1))]
}
private func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
