import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Crash consistency, proven by chaos: clients keep submitting W1 jobs and jobs with `command` agents
/// and tool calls while the daemon is SIGKILLed at random moments and restarted, again and again.
/// Then, with the last daemon left running until every job has ended:
///
/// - **lost submissions**: every submission the daemon acknowledged exists, under the id it was given,
///   and a submission retried after a kill (same idempotency key) never made a second job;
/// - every job reached a terminal state, and succeeded (every agent here eventually passes);
/// - **duplicate executions**: every command model, command verifier and `run_command` execution
///   marks its start and its end in a ledger (`KIND start RUN KEY`, `KIND end RUN KEY`: RUN names the
///   execution, KEY is its call's idempotency key). A call may run more than once only when the
///   daemon died after recording its start and before recording its result — the restart is then
///   recorded (`call.restarted` / `tool.restarted`). So each key may start at most once plus once per
///   recorded restart; anything beyond is a completed call executed twice. Every key in the ledger
///   must also belong to a recorded call (nothing runs unrecorded), and every recorded command call
///   must have run;
/// - **overlapping executions**: no execution of a call starts while an earlier execution of the same
///   call is still running. The harness kills nothing but the daemon: the processes the daemon had
///   started are the next daemon's to end (`Orphans`) before it runs their calls again. An interrupted
///   execution that outlived the daemon would write its end after its rerun's start; one that died
///   with it writes none (each works for a moment between its marks, so kills land inside);
/// - **broken transcripts**: each job's events are numbered without gaps, every call and tool call was
///   started once and completed once, a W1 job has exactly its 14 calls, every hash chain verifies
///   (`agentd audit verify --all`), and a sample of transcripts renders.
///
/// `AGENTD_CHAOS_KILLS` sets the number of kills (default 100), `AGENTD_CHAOS_SEED` the random seed
/// (printed, so a failing run can be repeated). The long run is documented in the README.
final class ChaosTests: EndToEndTestCase {
    func testNothingIsLostOrRunTwiceUnderRandomKills() throws {
        let environment = ProcessInfo.processInfo.environment
        let kills = Int(environment["AGENTD_CHAOS_KILLS"] ?? "") ?? 100
        let seed = UInt64(environment["AGENTD_CHAOS_SEED"] ?? "") ?? UInt64.random(in: 1...999_999)
        print("chaos: \(kills) kills, seed \(seed) (AGENTD_CHAOS_SEED=\(seed) repeats the schedule)")
        try FileManager.default.createDirectory(atPath: harness.dir + "/ws", withIntermediateDirectories: true)
        let command = try harness.preparePlan("chaos-command.yaml")
        // The same jobs with a gate on every command: a client approves them while the daemon is killed.
        let gated = harness.dir + "/chaos-gated.yaml"
        try (try String(contentsOfFile: command, encoding: .utf8))
            .replacingOccurrences(of: "name: chaos-command", with: "name: chaos-gated")
            .appending("gates:\n  - {tool: run_command, review: human}\n").write(toFile: gated, atomically: true, encoding: .utf8)
        let plans = [
            ChaosLoad.Plan(kind: .w1, path: Locations.shippedPlans + "/w1.yaml"),
            ChaosLoad.Plan(kind: .command, path: command),
            ChaosLoad.Plan(kind: .gated, path: gated),
        ]
        let load = ChaosLoad(socketPath: harness.socketPath, cwd: harness.dir, plans: plans)
        let started = Date()
        try harness.start()
        load.start(submitters: 3)
        load.startApprover()
        defer { load.abandon() }

        var random = SplitMix64(seed: seed)
        for _ in 0..<kills {
            // Anywhere from right after the daemon answers (recovery still running) to a few hundred
            // milliseconds into the load.
            let delay = Double(random.next() % 300) / 1000
            Thread.sleep(forTimeInterval: delay)
            // Only the daemon: whatever it had started is left for the next daemon to deal with.
            try harness.crash(killOrphans: false)
            try harness.restart(timeout: 60)
        }
        let submitted = load.stop()
        XCTAssertNil(load.failure, "a submission failed for a reason other than the kills: \(load.failure ?? "")")
        let ended = try waitUntil(timeout: 600, interval: 0.2) { try unfinishedJobs() == 0 }
        let approvals = load.stopApprover()
        let left = try unfinishedJobs()
        XCTAssertTrue(ended, "every job reaches a terminal state; \(left) have not")

        let report = try ChaosReport(
            harness: harness, acknowledged: submitted, ledger: harness.dir + "/ws/ledger", w1Plan: "w1",
            commandPlans: ["chaos-command", "chaos-gated"])
        let verify = try harness.run(["audit", "verify", "--all", "--db", harness.dbPath], timeout: 300)
        let sample = report.sampleJobs(seed: seed, count: 12)
        var unrenderable: [String] = []
        for id in sample {
            let rendered = try harness.cli(["transcript", id])
            if rendered.status != 0 || !rendered.stdout.contains(id) { unrenderable.append("\(id): \(rendered)") }
        }
        let seconds = Date().timeIntervalSince(started)
        print(
            """
            chaos figures: kills survived \(kills), jobs \(report.jobs) (w1 \(report.w1Jobs), command+tools \(report.commandJobs), \
            of them gated \(report.gatedJobs)), gates decided \(report.gates), approvals sent \(approvals), \
            agent calls \(report.calls), tool calls \(report.toolCalls), executions counted \(report.executions), \
            re-executions of interrupted calls \(report.reexecutions) (each one recorded as restarted), \
            duplicate executions \(report.duplicates.count), overlapping executions \(report.overlaps.count), \
            executions interrupted (no end mark) \(report.interrupted), lost submissions \(report.lost.count), \
            broken transcripts \(report.broken.count + (verify.status == 0 ? 0 : 1) + unrenderable.count), \
            submissions retried after a kill \(load.retries), \(String(format: "%.1f", seconds)) s
            """)
        XCTAssertTrue(report.lost.isEmpty, "lost submissions: \(report.lost.prefix(10))")
        XCTAssertTrue(report.duplicates.isEmpty, "completed calls executed twice: \(report.duplicates.prefix(10))")
        XCTAssertTrue(
            report.overlaps.isEmpty, "executions that started before the previous one of the call ended: \(report.overlaps.prefix(10))")
        XCTAssertTrue(report.unrecorded.isEmpty, "executions of calls that were never recorded: \(report.unrecorded.prefix(10))")
        XCTAssertTrue(report.notExecuted.isEmpty, "recorded command calls that never ran: \(report.notExecuted.prefix(10))")
        XCTAssertTrue(report.notSucceeded.isEmpty, "jobs that did not succeed: \(report.notSucceeded.prefix(10))")
        XCTAssertTrue(report.broken.isEmpty, "broken transcripts: \(report.broken.prefix(10))")
        XCTAssertEqual(verify.status, 0, "every hash chain verifies: \(verify)")
        XCTAssertTrue(unrenderable.isEmpty, "transcripts that do not render: \(unrenderable)")
        XCTAssertGreaterThan(report.w1Jobs, 0, "W1 jobs ran")
        XCTAssertGreaterThan(report.commandJobs, 0, "command jobs ran")
        XCTAssertGreaterThan(report.toolCalls, 0, "tools ran")
        XCTAssertGreaterThan(report.gates, 0, "gated commands were approved and ran")
    }

    private func unfinishedJobs() throws -> Int {
        let text = try harness.sqlite("SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded','failed','cancelled')")
        return Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }
}

/// Clients that keep submitting jobs through kills: each submission carries an idempotency key and is
/// retried under the same key until the daemon acknowledges it.
final class ChaosLoad: @unchecked Sendable {
    enum Kind: String { case w1, command, gated }
    struct Plan {
        let kind: Kind
        let path: String
    }

    private let socketPath: String
    private let cwd: String
    private let plans: [Plan]
    private let lock = NSLock()
    private var stopping = false
    private var abandoned = false
    private var nextKey = 0
    private var acknowledged: [String: String] = [:]
    private(set) var failure: String?
    private(set) var retries = 0
    private var threads: [Thread] = []
    private let finished = DispatchGroup()

    init(socketPath: String, cwd: String, plans: [Plan]) {
        self.socketPath = socketPath
        self.cwd = cwd
        self.plans = plans
    }

    private var approving = true
    private var approvals = 0
    private let approverDone = DispatchGroup()

    /// Plays the person: approves every waiting gate it sees, through the kills, until stopped.
    func startApprover() {
        approverDone.enter()
        Thread { [self] in
            var connection: WireConnection?
            while lock.withLock({ approving }) {
                do {
                    if connection == nil { connection = try WireConnection(path: socketPath) }
                    let gates = try connection!.call("gate.list", timeout: 10)["gates"]?.arrayValue ?? []
                    for gate in gates {
                        let params: JSON = [
                            "id": gate["job"] ?? .null, "gate": gate["gate"] ?? .null, "request_sha256": gate["request_sha256"] ?? .null,
                            "decision": "approve", "note": "chaos",
                        ]
                        let reply = try connection!.request("gate.decide", params, timeout: 10)
                        if reply["result"] != nil { lock.withLock { approvals += 1 } }
                        // -32013: decided meanwhile (by an earlier approval that got through before a kill).
                        if let code = reply["error"]?["code"]?.intValue, code != -32013, code != -32004 {
                            record(failure: "gate.decide was refused: \(reply.encoded)")
                        }
                    }
                    Thread.sleep(forTimeInterval: 0.02)
                } catch {
                    connection = nil
                    Thread.sleep(forTimeInterval: 0.01)
                }
            }
            approverDone.leave()
        }.start()
    }

    /// Stops the approver; returns how many approvals the daemon acknowledged.
    func stopApprover() -> Int {
        lock.withLock { approving = false }
        approverDone.wait()
        return lock.withLock { approvals }
    }

    func start(submitters: Int) {
        for _ in 0..<submitters {
            finished.enter()
            let thread = Thread { [self] in
                submitUntilStopped()
                finished.leave()
            }
            threads.append(thread)
            thread.start()
        }
    }

    /// Stops submitting new jobs, lets every client finish its pending submission, and returns what was
    /// acknowledged: idempotency key → job id.
    func stop() -> [String: String] {
        lock.withLock { stopping = true }
        finished.wait()
        return lock.withLock { acknowledged }
    }

    /// Stops every client at once, pending submissions or not (a test that failed midway), and waits for them.
    func abandon() {
        lock.withLock {
            stopping = true
            abandoned = true
            approving = false
        }
        finished.wait()
    }

    private func submitUntilStopped() {
        var connection: WireConnection?
        var pending: (key: String, plan: Plan)?
        while true {
            let next: (key: String, plan: Plan)? = lock.withLock {
                if abandoned { return nil }
                if let pending { return pending }
                if stopping { return nil }
                nextKey += 1
                return ("chaos-\(nextKey)", plans[nextKey % plans.count])
            }
            guard let (key, plan) = next else { return }
            do {
                if connection == nil { connection = try WireConnection(path: socketPath) }
                let job = try connection!.call(
                    "job.submit",
                    [
                        "plan_path": .string(plan.path), "goal": .string("chaos \(key)"), "idempotency_key": .string(key),
                        "cwd": .string(cwd), "inputs": ["kind": .string(plan.kind.rawValue)],
                    ], timeout: 30)
                guard let id = job["id"]?.stringValue else {
                    record(failure: "job.submit answered without an id: \(job.encoded)")
                    return
                }
                lock.withLock {
                    if let earlier = acknowledged[key], earlier != id {
                        failure = failure ?? "the key \(key) was acknowledged as \(earlier) and then as \(id)"
                    }
                    acknowledged[key] = id
                }
                pending = nil
                Thread.sleep(forTimeInterval: 0.01)
            } catch let error as RPCFailure where error.code != -32004 {
                // -32004 is "shutting down"; any other refusal is a bug.
                record(failure: "job.submit of \(key) was refused: \(error)")
                return
            } catch {
                // The daemon died under the request, or is not up yet: retry under the same key.
                connection = nil
                pending = (key, plan)
                lock.withLock { retries += 1 }
                Thread.sleep(forTimeInterval: 0.005)
            }
        }
    }

    private func record(failure message: String) {
        lock.withLock { failure = failure ?? message }
    }
}

/// What the database and the ledger say after the chaos, checked job by job.
struct ChaosReport {
    private(set) var jobs = 0
    private(set) var w1Jobs = 0
    private(set) var commandJobs = 0
    private(set) var gatedJobs = 0
    /// Gates decided (each once, before its call ran).
    private(set) var gates = 0
    private(set) var calls = 0
    private(set) var toolCalls = 0
    private(set) var executions = 0
    private(set) var reexecutions = 0
    private(set) var lost: [String] = []
    private(set) var duplicates: [String] = []
    /// Executions of a call that started while an earlier one of the same call had not ended yet.
    private(set) var overlaps: [String] = []
    /// Executions that started and never marked their end (the daemon's death ended them).
    private(set) var interrupted = 0
    private(set) var unrecorded: [String] = []
    private(set) var notExecuted: [String] = []
    private(set) var notSucceeded: [String] = []
    private(set) var broken: [String] = []
    private var ids: [String] = []

    /// One row of the events table, as far as the checks need it.
    private struct Event {
        let seq: Int
        let kind: String
        let role: String
        let call: String
        let tool: String
    }

    init(harness: DaemonHarness, acknowledged: [String: String], ledger: String, w1Plan: String, commandPlans: Set<String>) throws {
        // Jobs: every acknowledged key exists under its id, and no key made two jobs (the column is UNIQUE;
        // a job without a key would be a submission nobody made).
        var byKey: [String: (id: String, plan: String, status: String)] = [:]
        for row in try Self.rows(harness, ["id", "plan_name", "status", "coalesce(idempotency_key, '')"], from: "jobs") {
            guard row.count == 4 else { throw HarnessError("unexpected jobs row \(row)") }
            if row[3].isEmpty { broken.append("\(row[0]): a job no client submitted") }
            byKey[row[3]] = (row[0], row[1], row[2])
            ids.append(row[0])
            if row[2] != "succeeded" { notSucceeded.append("\(row[0]) \(row[2])") }
        }
        jobs = ids.count
        for (key, id) in acknowledged where byKey[key]?.id != id {
            lost.append("\(key) was acknowledged as \(id) but the database has \(byKey[key]?.id ?? "nothing")")
        }
        if jobs != acknowledged.count { broken.append("\(jobs) jobs for \(acknowledged.count) acknowledged submissions") }
        let plans = Dictionary(uniqueKeysWithValues: byKey.values.map { ($0.id, $0.plan) })
        w1Jobs = plans.values.filter { $0 == w1Plan }.count
        commandJobs = plans.values.filter { commandPlans.contains($0) }.count
        gatedJobs = plans.values.filter { $0 == "chaos-gated" }.count

        // Events, job by job.
        var events: [String: [Event]] = [:]
        let columns = [
            "job_id", "seq", "kind", "coalesce(role, '')", "coalesce(call_id, '')",
            "CASE WHEN kind = 'tool.started' THEN json_extract(payload, '$.tool') ELSE '' END",
        ]
        for row in try Self.rows(harness, columns, from: "events ORDER BY job_id, seq") {
            guard row.count == 6, let seq = Int(row[1]) else { throw HarnessError("unexpected events row \(row)") }
            events[row[0], default: []].append(Event(seq: seq, kind: row[2], role: row[3], call: row[4], tool: row[5]))
        }

        // Executions the ledger counted, per idempotency key, and whether any two of a call overlapped:
        // the ledger is in the order the marks were written (appends), so an execution still running
        // when the next one of its call started shows its end after that start.
        var executed: [String: Int] = [:]
        var running: [String: Set<String>] = [:]  // key -> executions started and not yet ended
        var startedAlongside: [String: Set<String>] = [:]  // execution -> later executions of its call begun meanwhile
        var ends = 0
        let text = (try? String(contentsOfFile: ledger, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
            guard parts.count == 4, ["call", "verify", "tool"].contains(parts[0]) else {
                broken.append("ledger line '\(line)'")
                continue
            }
            let (mark, run, key) = (parts[1], parts[2], parts[3])
            switch mark {
            case "start":
                executed[key, default: 0] += 1
                executions += 1
                for earlier in running[key, default: []] { startedAlongside[earlier, default: []].insert(run) }
                running[key, default: []].insert(run)
            case "end":
                guard running[key]?.remove(run) != nil else {
                    broken.append("ledger: \(run) of \(key) ended without starting, or twice")
                    continue
                }
                ends += 1
                for later in startedAlongside.removeValue(forKey: run) ?? [] {
                    overlaps.append("\(key): execution \(later) started before \(run) ended")
                }
            default:
                broken.append("ledger line '\(line)'")
            }
        }
        interrupted = executions - ends

        var recordedKeys: Set<String> = []
        for id in ids {
            let log = events[id] ?? []
            let isCommandJob = plans[id].map(commandPlans.contains) ?? false
            // A gate: requested once, decided once, and its call started only after the decision.
            var requested: [String: Int] = [:]
            var decided: [String: Int] = [:]
            for e in log {
                switch e.kind {
                case EventKind.gateRequested.rawValue: requested[e.call, default: 0] += 1
                case EventKind.gateDecided.rawValue:
                    decided[e.call, default: 0] += 1
                    gates += 1
                case EventKind.toolStarted.rawValue where requested[e.call] != nil && decided[e.call] != 1:
                    broken.append("\(id): tool \(e.call) started without one recorded decision of its gate")
                default: break
                }
            }
            for (gate, count) in requested where count != 1 || decided[gate] != 1 {
                broken.append("\(id): gate \(gate) requested \(count) times and decided \(decided[gate] ?? 0) times")
            }
            if log.map(\.seq) != Array(1...max(1, log.count)) || log.isEmpty {
                broken.append("\(id): seq numbers are not 1...\(log.count)")
            }
            var started: [String: Int] = [:]
            var ended: [String: Int] = [:]
            var restarts: [String: Int] = [:]
            var roles: [String: String] = [:]
            var runsCommand: Set<String> = []
            for e in log {
                switch e.kind {
                case EventKind.callStarted.rawValue, EventKind.toolStarted.rawValue:
                    started[e.call, default: 0] += 1
                    roles[e.call] = e.role
                    if e.kind == EventKind.toolStarted.rawValue {
                        toolCalls += 1
                        if e.tool == "run_command" { runsCommand.insert(e.call) }
                    } else if isCommandJob, e.role != "actor" {
                        runsCommand.insert(e.call)
                    }
                case EventKind.callCompleted.rawValue, EventKind.callFailed.rawValue, EventKind.toolCompleted.rawValue:
                    ended[e.call, default: 0] += 1
                    if e.kind != EventKind.toolCompleted.rawValue { calls += 1 }
                case EventKind.callRestarted.rawValue, EventKind.toolRestarted.rawValue:
                    // A restart is due only to a call that has not completed.
                    if ended[e.call] == nil {
                        restarts[e.call, default: 0] += 1
                    } else {
                        duplicates.append("\(id): call \(e.call) was restarted after it had completed (seq \(e.seq))")
                    }
                default: break
                }
            }
            for (call, count) in started where count != 1 || ended[call] != 1 {
                broken.append("\(id): call \(call) started \(count) times and ended \(ended[call] ?? 0) times")
            }
            for call in ended.keys where started[call] == nil { broken.append("\(id): call \(call) ended without starting") }
            if plans[id] == w1Plan, ended.count != 14 { broken.append("\(id): a W1 job made \(ended.count) calls, not 14") }
            for call in runsCommand {
                let key = "\(id)/\(call.replacingOccurrences(of: ".", with: "/"))"
                recordedKeys.insert(key)
                let runs = executed[key] ?? 0
                let allowed = 1 + (restarts[call] ?? 0)
                reexecutions += max(0, min(runs, allowed) - 1)
                if runs > allowed { duplicates.append("\(key) ran \(runs) times with \(allowed - 1) recorded restarts") }
                if runs == 0 && ended[call] == 1 { notExecuted.append(key) }
            }
        }
        for key in executed.keys where !recordedKeys.contains(key) { unrecorded.append(key) }
    }

    /// `count` job ids, chosen by `seed`, for the checks that cost a process each.
    func sampleJobs(seed: UInt64, count: Int) -> [String] {
        var random = SplitMix64(seed: seed ^ 0x5eed)
        return (0..<min(count, ids.count)).map { _ in ids[Int(random.next() % UInt64(ids.count))] }
    }

    /// The rows of a query through the `sqlite3` CLI: `columns` are joined with a unit separator (none of
    /// the values queried holds one, or a newline).
    private static func rows(_ harness: DaemonHarness, _ columns: [String], from: String) throws -> [[String]] {
        let sql = "SELECT " + columns.joined(separator: " || char(31) || ") + " FROM " + from
        return try harness.sqlite(sql).split(separator: "\n").map {
            $0.split(separator: "\u{1f}", omittingEmptySubsequences: false).map(String.init)
        }
    }
}
