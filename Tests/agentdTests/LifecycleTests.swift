import Foundation
import Store
import XCTest

#if canImport(Glibc)
    import Glibc
#endif

/// Jobs and the daemon over time: cancellation, resubmission, failure, crash and restart, shutdown.
final class LifecycleTests: EndToEndTestCase {
    /// Cancelling a job whose actor is a sleeping command: the job is cancelled and the child process
    /// (and its process group) is gone.
    func testCancelKillsRunningCommand() throws {
        try harness.start()
        let plan = try harness.preparePlan("cancel-sleep.yaml")
        let id = try submit(plan)
        try harness.waitForEvent(id, "actor call.started") {
            $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor"
        }
        var children: [ProcessTable.Entry] = []
        XCTAssertTrue(
            waitUntil(timeout: 10) {
                children = ProcessTable.alive(containing: harness.marker)
                return !children.isEmpty
            }, "the actor's command is running")
        let groups = Set(children.map(\.processGroup))

        let cancel = try harness.cli("cancel", id)
        XCTAssertEqual(cancel.status, 0, "\(cancel)")
        XCTAssertEqual(cancel.stdoutLines, ["job \(id) cancelled"], "\(cancel)")

        let show = try harness.cli("show", id, "--json")
        XCTAssertEqual(show.status, 0, "\(show)")
        let job = try parseJSON(show.stdout)
        XCTAssertEqual(job["status"]?.stringValue, "cancelled")
        XCTAssertNotNil(job["finished_at"]?.doubleValue, "a cancelled job has finished")

        let gone = waitUntil(timeout: 5) {
            ProcessTable.alive(containing: harness.marker).isEmpty && groups.allSatisfy { ProcessTable.alive(inGroup: $0).isEmpty }
        }
        XCTAssertTrue(
            gone,
            "the sleeping command is killed: still alive: "
                + (ProcessTable.alive(containing: harness.marker) + groups.flatMap { ProcessTable.alive(inGroup: $0) })
                .map { "\($0.pid) \($0.commandLine)" }.joined(separator: "; "))

        // job.wait returns at once, the job stays cancelled, and a second cancel changes nothing and says so.
        XCTAssertEqual(try harness.waitForJob(id, timeout: 5)["status"]?.stringValue, "cancelled")
        let again = try harness.cli("cancel", id, "--json")
        XCTAssertEqual(again.status, 1, "\(again)")
        XCTAssertEqual(again.stderrLines, ["agentd: job \(id) had already finished (cancelled); nothing to cancel"], "\(again)")
        XCTAssertEqual(try parseJSON(again.stdout)["status"]?.stringValue, "cancelled")

        let events = try harness.events(id)
        assertContiguous(events)
        let terminal = self.events(events, kind: "job.state").filter {
            ["succeeded", "failed", "cancelled"].contains($0["payload"]?["to"]?.stringValue ?? "")
        }
        XCTAssertEqual(terminal.count, 1, "one terminal state change:\n\(dump(events))")
        XCTAssertEqual(terminal.first?["payload"]?["to"]?.stringValue, "cancelled")
        XCTAssertEqual(self.events(events, kind: "call.completed").count, 0, dump(events))
        XCTAssertNotNil(try harness.rpc("daemon.status")["pid"], "the daemon still serves")
    }

    /// `cancel` on a job that has finished leaves it as it is, says so on stderr and exits 1 (with
    /// `--json`, the job object is still printed).
    func testCancelOfAFinishedJobSaysSoAndFails() throws {
        try harness.start()
        let id = try submit(Locations.shippedPlans + "/w1.yaml")
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        let cancel = try harness.cli("cancel", id)
        XCTAssertEqual(cancel.status, 1, "\(cancel)")
        XCTAssertEqual(cancel.stderrLines, ["agentd: job \(id) had already finished (succeeded); nothing to cancel"], "\(cancel)")
        XCTAssertEqual(cancel.stdout, "", "\(cancel)")
        let json = try harness.cli("cancel", id, "--json")
        XCTAssertEqual(json.status, 1, "\(json)")
        let job = try parseJSON(json.stdout)
        XCTAssertEqual(job["id"]?.stringValue, id)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded")
        let events = try harness.events(id)
        XCTAssertEqual(events.last?["payload"]?["to"]?.stringValue, "succeeded", "the job is unchanged:\n\(dump(events))")
    }

    /// The same idempotency key returns the same job, and only one job exists. Uses AGENTD_SOCKET.
    func testIdempotentResubmit() throws {
        try harness.start()
        let env = ["AGENTD_SOCKET": harness.socketPath]
        let plan = Locations.shippedPlans + "/w1.yaml"
        let first = try harness.cli(["submit", plan, "--idempotency-key", "key-1", "--json"], socket: false, env: env)
        XCTAssertEqual(first.status, 0, "\(first)")
        let second = try harness.cli(["submit", plan, "--idempotency-key", "key-1", "--json"], socket: false, env: env)
        XCTAssertEqual(second.status, 0, "\(second)")
        let a = try parseJSON(first.stdout)
        let b = try parseJSON(second.stdout)
        let id = try XCTUnwrap(a["id"]?.stringValue)
        XCTAssertEqual(b["id"]?.stringValue, id, "the same key gives the same job")
        XCTAssertEqual(a["created"]?.boolValue, true)
        XCTAssertEqual(b["created"]?.boolValue, false, "the second submit says it created nothing")
        XCTAssertEqual(b["idempotency_key"]?.stringValue, "key-1")

        let list = try harness.cli(["ls", "--json"], socket: false, env: env)
        XCTAssertEqual(list.status, 0, "\(list)")
        let jobs = try XCTUnwrap(try parseJSON(list.stdout).arrayValue, "ls --json prints an array")
        XCTAssertEqual(jobs.count, 1, "one job: \(list.stdout)")
        XCTAssertEqual(jobs.first?["id"]?.stringValue, id)

        // Still the same job after it finished.
        XCTAssertEqual(try harness.waitForJob(id)["status"]?.stringValue, "succeeded")
        let third = try harness.cli(["submit", plan, "--idempotency-key", "key-1", "--json"], socket: false, env: env)
        XCTAssertEqual(try parseJSON(third.stdout)["id"]?.stringValue, id)
        XCTAssertEqual(try parseJSON(third.stdout)["created"]?.boolValue, false)
        let list2 = try harness.cli(["ls", "--json"], socket: false, env: env)
        XCTAssertEqual(try parseJSON(list2.stdout).arrayValue?.count, 1)
    }

    /// A command verifier that exits 3: the job fails, says why, and the transcript keeps the exit
    /// status and stderr.
    func testVerifierCommandFailure() throws {
        try harness.start()
        let plan = try harness.preparePlan("verifier-fails.yaml")
        let result = try harness.cli("submit", plan, "--wait", "--json")
        XCTAssertEqual(result.status, 1, "submit --wait exits 1 when the job failed: \(result)")
        let job = try parseJSON(result.stdout)
        XCTAssertEqual(job["status"]?.stringValue, "failed")
        let reason = try XCTUnwrap(job["reason"]?.stringValue)
        XCTAssertTrue(reason.contains("exit status 3"), "the reason names the exit status: \(reason)")

        let id = try XCTUnwrap(job["id"]?.stringValue)
        let events = try harness.events(id)
        let verifier = self.events(events, kind: "call.completed", role: "verifier")
        XCTAssertEqual(verifier.count, 1, dump(events))
        let payload = try XCTUnwrap(verifier.first?["payload"])
        XCTAssertEqual(payload["verified"]?.boolValue, false)
        XCTAssertEqual(payload["raw"]?["exit_status"]?.intValue, 3, payload.encoded)
        XCTAssertEqual(payload["raw"]?["stderr"]?.stringValue, "broken\n", payload.encoded)
        XCTAssertEqual(payload["raw"]?["argv"], ["sh", "-c", "echo broken >&2; exit 3"])
        let started = self.events(events, kind: "call.started", role: "verifier")
        XCTAssertEqual(started.count, 1)
        XCTAssertTrue(started.first?["payload"]?["request"]?.encoded.contains("exit 3") == true, "the command is recorded as the request")

        // The text views say the same.
        let text = try harness.cli("submit", plan, "--wait")
        XCTAssertEqual(text.status, 1)
        XCTAssertTrue(text.stdoutLines.last?.contains(" failed: ") == true && text.stdout.contains("exit status 3"), "\(text)")
    }

    /// Starts the daemon and a `crash-resume` job, and waits until the first execution of step 1's call
    /// has started (it sleeps). Returns the job, the model's execution log, and a reader of that log.
    private func startJobWithASlowStep() throws -> (id: String, counter: String, counted: () -> [String]) {
        try harness.start()
        let plan = try harness.preparePlan("crash-resume.yaml")
        let counter = harness.dir + "/counter.txt"
        let id = try submit(plan)
        let counted = { CommandResult.lines((try? String(contentsOfFile: counter, encoding: .utf8)) ?? "") }
        XCTAssertTrue(waitUntil(timeout: 20) { counted().contains("step=1 attempt=0") }, "step 1's call started: \(counted())")
        // The model writes its flag after its counter line: killed in between, its rerun would be the slow one.
        let flag = harness.dir + "/slow-step-started.flag"
        XCTAssertTrue(waitUntil(timeout: 20) { FileManager.default.fileExists(atPath: flag) }, "step 1's model made its flag")
        return (id, counter, counted)
    }

    /// SIGKILL while a command actor's call is in flight, restart on the same database: the job
    /// resumes, completed calls are not made again, the interrupted one is made once more.
    func testCrashRecoveryResumesJob() throws {
        let (id, counter, counted) = try startJobWithASlowStep()
        let inFlight = try harness.waitForEvent(id, "step 1 actor call.started") {
            $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor" && $0["step"]?.intValue == 1
        }
        let interruptedCall = try XCTUnwrap(inFlight["call"]?.stringValue)
        XCTAssertEqual(counted(), ["step=0 attempt=0", "step=1 attempt=0"])

        // A crash of the machine would take the model process with it; the harness kills the orphan too.
        let orphans = try harness.crash(killOrphans: true)
        XCTAssertEqual(orphans.filter { $0.commandLine.contains(counter) }.count, 1, "the interrupted model process outlived the daemon")
        XCTAssertTrue(waitUntil(timeout: 5) { ProcessTable.alive(containing: counter).isEmpty })

        try harness.restart()
        let job = try harness.waitForJob(id, timeout: 30)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(job.encoded)")
        XCTAssertEqual(
            counted(), ["step=0 attempt=0", "step=1 attempt=0", "step=1 attempt=0", "step=2 attempt=0"],
            "every completed call ran once; the interrupted one ran twice")

        let events = try harness.events(id)
        let summary = dump(events)
        assertContiguous(events)
        XCTAssertEqual(self.events(events, kind: "job.resumed").count, 1, summary)
        let restarted = self.events(events, kind: "call.restarted")
        XCTAssertEqual(restarted.count, 1, summary)
        XCTAssertEqual(restarted.first?["call"]?.stringValue, interruptedCall)
        XCTAssertEqual(restarted.first?["role"]?.stringValue, "actor")
        XCTAssertEqual(restarted.first?["step"]?.intValue, 1)

        var completions: [String: Int] = [:]
        var starts: [String: Int] = [:]
        for e in events {
            guard let call = e["call"]?.stringValue else { continue }
            switch e["kind"]?.stringValue {
            case "call.completed", "call.failed": completions[call, default: 0] += 1
            case "call.started": starts[call, default: 0] += 1
            default: break
            }
        }
        XCTAssertEqual(completions.filter { $0.value > 1 }, [:], "no call completed twice:\n\(summary)")
        XCTAssertEqual(starts.filter { $0.value > 1 }, [:], "no call recorded as started twice:\n\(summary)")
        XCTAssertEqual(Set(completions.keys), Set(starts.keys), "every started call completed:\n\(summary)")
        XCTAssertEqual(self.events(events, kind: "call.completed", role: "actor").map { $0["step"]?.intValue ?? -1 }, [0, 1, 2])
        let show = try parseJSON(try harness.cli("show", id, "--json").stdout)
        XCTAssertEqual(show["completed_calls"]?["actor"]?.intValue, 3)
    }

    /// SIGKILL leaves the interrupted model process running (its own process group). The next daemon
    /// on the database kills it before re-running the call, so the two executions never overlap.
    func testANewDaemonKillsWhatTheOldOneLeftRunning() throws {
        let (id, counter, counted) = try startJobWithASlowStep()
        let old = try XCTUnwrap(harness.daemonPID)
        kill(old, SIGKILL)
        XCTAssertTrue(waitUntil(timeout: 10) { ProcessTable.entry(old)?.isAlive != true }, "the daemon died")
        let orphans = ProcessTable.alive(containing: counter)
        XCTAssertEqual(orphans.count, 1, "the interrupted model process outlived the daemon")
        XCTAssertTrue(
            ProcessTable.environment(of: orphans[0].pid).contains(Array("AGENTD_DAEMON_DB=\(harness.dbPath)".utf8)),
            "children carry the daemon's database in AGENTD_DAEMON_DB")

        // The old daemon's `Process` is not told of its exit while the orphan holds its pipe: start the
        // next one beside it.
        let next = try harness.launchServe()
        defer {
            next.terminate()
            next.waitUntilExit()
        }
        XCTAssertTrue(waitUntil(timeout: 20) { (try? harness.rpc("daemon.status"))?["pid"]?.intValue != nil }, harness.daemonLog())
        XCTAssertTrue(
            waitUntil(timeout: 10) { ProcessTable.alive(containing: counter).isEmpty },
            "the new daemon killed the old one's model process: \(ProcessTable.alive(containing: counter).map(\.pid))")
        XCTAssertTrue(harness.daemonLog().contains("killed processes left by the previous daemon"), harness.daemonLog())
        let job = try harness.waitForJob(id, timeout: 30)
        XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(job.encoded)")
        XCTAssertEqual(
            counted(), ["step=0 attempt=0", "step=1 attempt=0", "step=1 attempt=0", "step=2 attempt=0"],
            "the interrupted call ran again, once")
    }

    /// Clients that connect while a command model's call is in flight are still served after that
    /// call's process exits, and the daemon survives it.
    func testConnectionsOpenedDuringCommandCallSurviveItsEnd() throws {
        try harness.start()
        let plan = try harness.preparePlan("live-watch.yaml")
        let gate = harness.dir + "/gate"
        let id = try submit(plan)
        try harness.waitForEvent(id, "actor call.started") {
            $0["kind"]?.stringValue == "call.started" && $0["role"]?.stringValue == "actor"
        }
        XCTAssertTrue(waitUntil(timeout: 10) { !ProcessTable.alive(containing: gate).isEmpty }, "the actor's command runs")

        // Several long-lived clients, connected while the call runs.
        let connections = try (0..<16).map { _ in try harness.connect() }
        for connection in connections { XCTAssertNotNil(try connection.call("daemon.status")["pid"]) }
        _ = FileManager.default.createFile(atPath: gate, contents: Data())
        var dead: [String] = []
        let waiter = connections[0]
        do {
            let job = try waiter.call("job.wait", ["id": .string(id)], timeout: 20)
            XCTAssertEqual(job["status"]?.stringValue, "succeeded", "\(job.encoded)")
        } catch {
            dead.append("connection 0 (job.wait): \(error)")
        }
        for (i, connection) in connections.enumerated().dropFirst() {
            do {
                _ = try connection.call("daemon.status", timeout: 5)
            } catch {
                dead.append("connection \(i): \(error)")
            }
        }
        let alive = harness.daemon?.isRunning == true && ProcessTable.entry(harness.daemonPID ?? 0)?.isAlive == true
        XCTAssertTrue(alive, "the daemon is still running; log:\n\(harness.daemonLog())")
        XCTAssertEqual(dead, [], "every connection opened during the call still serves after the call ended")
    }

    /// SIGTERM on an idle daemon: exit 0 and the socket file is removed.
    func testSigtermWhileIdle() throws {
        try harness.start()
        XCTAssertTrue(FileManager.default.fileExists(atPath: harness.socketPath))
        harness.sendSignal(SIGTERM)
        let exit = try harness.waitForExit(timeout: 10)
        XCTAssertEqual(exit.signal, 0, "serve is not killed by the signal")
        XCTAssertEqual(exit.status, 0, "serve exits 0 on SIGTERM; log:\n\(harness.daemonLog())")
        XCTAssertFalse(FileManager.default.fileExists(atPath: harness.socketPath), "the socket file is removed")
        let status = try harness.cli("status")
        XCTAssertEqual(status.status, 3, "nothing answers any more: \(status)")
        // The database lock was released: a new daemon starts on it.
        try harness.restart()
        XCTAssertNotNil(try harness.rpc("daemon.status")["pid"])
    }

    /// A second `serve` on the same database refuses to start; the first keeps serving.
    func testSecondServeOnSameDatabaseFails() throws {
        try harness.start()
        let firstPID = try XCTUnwrap(harness.daemonPID)
        let otherSocket = harness.dir + "/other.sock"
        let second = try harness.launchServe(socket: otherSocket)
        let exit = try DaemonHarness.waitForExit(second, timeout: 10)
        XCTAssertNotEqual(exit.status, 0, "the second serve fails")
        XCTAssertEqual(exit.signal, 0)
        let log = try String(contentsOfFile: try XCTUnwrap(harness.logPaths.last), encoding: .utf8)
        let errors = CommandResult.lines(log).filter { $0.hasPrefix("agentd: ") }
        XCTAssertEqual(errors.count, 1, "one error line: \(log)")
        let message = errors.first ?? ""
        XCTAssertTrue(message.contains(harness.dbPath), "names the database: \(message)")
        XCTAssertTrue(message.contains("already"), "says it is in use: \(message)")
        XCTAssertTrue(message.contains("\(firstPID)"), "names the running daemon's pid: \(message)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: otherSocket), "the second serve does not listen")

        // The first daemon is untouched.
        let status = try harness.cli("status", "--json")
        XCTAssertEqual(status.status, 0, "\(status)")
        XCTAssertEqual(try parseJSON(status.stdout)["pid"]?.intValue, Int(firstPID))
        XCTAssertEqual(try harness.cli("submit", Locations.shippedPlans + "/w1.yaml", "--wait").status, 0)

        // A second serve on the same socket (another database) is refused too.
        let third = try harness.launchServe(db: harness.dir + "/other.db")
        XCTAssertNotEqual(try DaemonHarness.waitForExit(third, timeout: 10).status, 0)
        let thirdLog = try String(contentsOfFile: try XCTUnwrap(harness.logPaths.last), encoding: .utf8)
        XCTAssertTrue(thirdLog.contains("agentd: ") && thirdLog.contains(harness.socketPath), thirdLog)
        XCTAssertEqual(try harness.rpc("daemon.status")["pid"]?.intValue, Int(firstPID), "the first daemon still serves its socket")
    }

    /// A lock still held after its recorded owner died (a child the dead daemon was starting shares it
    /// until it execs) delays the next daemon, which then starts; a live owner is refused at once.
    func testALockLeftByADeadDaemonsChildIsWaitedFor() throws {
        let gone = Process()
        gone.executableURL = URL(fileURLWithPath: "/bin/true")
        try gone.run()
        gone.waitUntilExit()
        // Holds the lock, names the dead process as its owner, lets go when its stdin closes.
        let lock = harness.dbPath + ".lock"
        try startsOnceLetGo(
            by: "import fcntl, sys; f = open(sys.argv[1], 'w'); fcntl.flock(f, fcntl.LOCK_EX); f.write(sys.argv[2] + '\\n'); "
                + "f.flush(); open(sys.argv[3], 'w').close(); sys.stdin.read()",
            [lock, "\(gone.processIdentifier)"]
        ) { daemon in
            // The daemon has opened the lock file: it is trying the lock the helper holds.
            let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(daemon)/fd")) ?? []
            return fds.contains { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(daemon)/fd/\($0)")) == lock }
        }
    }

    /// A socket that accepts but never answers (a dead daemon's, held by a child it was starting) is
    /// waited for and replaced; one that answers is not (`testSecondServeOnSameDatabaseFails`).
    func testASocketThatAcceptsButNeverAnswersIsWaitedFor() throws {
        // Accepts and counts every connection (a line each in the probes file), never answers, and
        // stops listening when its stdin closes.
        let probes = harness.dir + "/probes"
        try startsOnceLetGo(
            by: "import os, socket, sys, threading; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(64); "
                + "held = []\n"
                + "def serve():\n    while True:\n        c, _ = s.accept(); held.append(c)\n"
                + "        with open(sys.argv[2], 'a') as f: f.write('probe\\n')\n"
                + "threading.Thread(target=serve, daemon=True).start(); open(sys.argv[3], 'w').close(); sys.stdin.read(); s.close(); os._exit(0)",
            [harness.socketPath, probes]
        ) { _ in
            // The daemon connected twice: it asked, got no answer, and asked again instead of giving up.
            ((try? String(contentsOfFile: probes, encoding: .utf8)) ?? "").split(separator: "\n").count >= 2
        }
    }

    /// Runs Python `code` (its arguments: `arguments`, then a file it creates once it holds what the
    /// daemon needs; it lets go when its stdin closes), starts the daemon while it holds it, waits
    /// until `waiting(daemon's pid)` shows the daemon is waiting for it, and checks the daemon was not
    /// serving then, and is the one serving once the helper lets go.
    private func startsOnceLetGo(by code: String, _ arguments: [String], waiting: (Int32) -> Bool) throws {
        let holding = harness.dir + "/holding"
        let holder = Process()
        let hold = Pipe()
        holder.executableURL = URL(fileURLWithPath: try Locations.python())
        holder.arguments = ["-c", code] + arguments + [holding]
        holder.standardInput = hold
        try holder.run()
        defer { if holder.isRunning { holder.terminate() } }
        XCTAssertTrue(waitUntil(timeout: 10) { FileManager.default.fileExists(atPath: holding) }, "the helper holds it")
        let daemon = try harness.launchServe()
        defer { if daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) } }
        XCTAssertTrue(
            waitUntil(timeout: 10) { !daemon.isRunning || waiting(daemon.processIdentifier) },
            "the daemon reached what the helper holds: \(harness.lastDaemonLog())")
        XCTAssertTrue(daemon.isRunning, "the daemon waits instead of giving up: \(harness.lastDaemonLog())")
        XCTAssertThrowsError(try WireConnection(path: harness.socketPath).call("daemon.status", timeout: 1), "nothing serves yet")

        try hold.fileHandleForWriting.close()
        holder.waitUntilExit()
        var status: JSON?
        XCTAssertTrue(
            waitUntil(timeout: 15) {
                status = try? WireConnection(path: harness.socketPath).call("daemon.status", timeout: 5)
                return status != nil || !daemon.isRunning
            }, "the daemon serves once the helper let go: \(harness.lastDaemonLog())")
        XCTAssertEqual(status?["pid"]?.intValue, Int(daemon.processIdentifier), "the daemon that waited is the one serving")
        XCTAssertEqual(try harness.cli("submit", Locations.shippedPlans + "/w1.yaml", "--wait").status, 0)
        kill(daemon.processIdentifier, SIGTERM)
        _ = try DaemonHarness.waitForExit(daemon, timeout: 15)
    }
}
