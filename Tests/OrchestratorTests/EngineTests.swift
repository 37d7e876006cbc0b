import Agents
import Foundation
import Logging
import Store
import TestSupport
import XCTest

@testable import Orchestrator
@testable import Runtime

/// An engine on a real loop and a real store in a temporary directory, without a socket.
private final class EngineHarness: @unchecked Sendable {
    let directory: TemporaryDirectory
    let loop: EventLoop
    let writer: StoreWriter
    let reader: StoreReader
    let engine: Engine

    init(maxRunning: Int = 256) throws {
        directory = try TemporaryDirectory()
        writer = try StoreWriter(path: directory.databasePath, clock: SystemClock())
        writer.start()
        reader = try StoreReader(path: directory.databasePath)
        loop = startedLoop()
        var configuration = Engine.Configuration()
        configuration.maxRunning = maxRunning
        engine = Engine(
            loop: loop, writer: writer, reader: reader, clock: SystemClock(),
            logger: Logger(label: "agentd.tests") { _ in SwiftLogNoOpLogHandler() }, configuration: configuration)
    }

    /// Runs `body` on the loop, where every engine method must be called.
    func onLoop<T: Sendable>(_ body: @escaping @Sendable (Engine) async throws -> T) async throws -> T {
        let engine = self.engine
        return try await loop.run { try await body(engine) }
    }

    func submit(_ plan: String, goal: String = "the goal", key: String? = nil) async throws -> JobRecord {
        try await onLoop { try await $0.submit(.init(SubmitParams(planText: plan, goal: goal, idempotencyKey: key))).job }
    }

    /// The job once it is terminal; a job that never gets there fails the test (`bounded`).
    func wait(_ id: String) async throws -> JobRecord {
        try await bounded("job \(id) reaching a terminal state") { [self] in try await onLoop { try await $0.wait(id) } }
    }

    /// Cancels `id`, then waits for it on the loop right away. Returns the status `wait` reported, or
    /// a description of what went wrong; a generous guard turns a wait that never returns into an
    /// answer instead of a hung suite.
    func cancelThenWait(_ id: String) async throws -> String {
        try await onLoop { engine -> String in
            let cancelled = try await engine.cancel(id)
            guard cancelled.status == .cancelled else { return "cancel() returned \(cancelled.status.rawValue)" }
            return await withUnsafeContinuation { (result: UnsafeContinuation<String, Never>) in
                let answered = LoopBox(false)
                let guardTimer = LoopTimer(loop: engine.loop)
                guardTimer.start(after: 10_000) {
                    guard !answered.value else { return }
                    answered.value = true
                    guardTimer.close()
                    result.resume(returning: "wait() did not return after cancel()")
                }
                Task(executorPreference: engine.loop) {
                    let record = try? await engine.wait(id)
                    guard !answered.value else { return }
                    answered.value = true
                    guardTimer.close()
                    result.resume(returning: record?.status.rawValue ?? "wait() threw")
                }
            }
        }
    }

    func events(_ id: String) throws -> [EventRecord] {
        try reader.readNow { try $0.events(jobID: id) }
    }

    /// Returns once a committed event of `jobID` satisfies `matches`, whether it was committed before
    /// this call or after; one that never comes fails the test (`bounded`).
    func waitForEvent(_ jobID: String, _ matches: @escaping @Sendable (EventRecord) -> Bool) async throws -> EventRecord {
        try await bounded("an event of job \(jobID)") { [self] in try await unboundedWaitForEvent(jobID, matches) }
    }

    private func unboundedWaitForEvent(_ jobID: String, _ matches: @escaping @Sendable (EventRecord) -> Bool) async throws -> EventRecord {
        let reader = self.reader
        return try await onLoop { engine in
            let found = LoopBox<EventRecord?>(nil)
            let waiter = LoopBox<UnsafeContinuation<Void, Never>?>(nil)
            // Subscribe first, then read the history: nothing can fall between the two.
            let subscription = engine.hub.subscribe(jobID: jobID) { event in
                guard found.value == nil, matches(event) else { return }
                found.value = event
                waiter.value?.resume()
                waiter.value = nil
            }
            defer { engine.hub.unsubscribe(subscription) }
            let history = try await reader.read { try $0.events(jobID: jobID) }
            if found.value == nil, let event = history.first(where: matches) { found.value = event }
            if found.value == nil {
                await withUnsafeContinuation { waiter.value = $0 }
            }
            return found.value!
        }
    }

    /// Stops admitting jobs and returns once no runner is left (in-flight calls are abandoned); a
    /// drain that never ends fails the test (`bounded`).
    func drain() async throws {
        let (engine, loop) = (self.engine, self.loop)
        try await bounded("the engine's drain") {
            await withUnsafeContinuation { (done: UnsafeContinuation<Void, Never>) in
                loop.execute {
                    engine.drain { done.resume() }
                    engine.abandonInFlight()
                }
            }
        }
    }

    /// Drains the engine, closes the loop and the store.
    func stop() async throws {
        try await drain()
        loop.finish()
        writer.close()
        directory.remove()
    }
}

final class EngineTests: XCTestCase {
    /// The W1 workload: 4 planned steps; the critic fails attempt 0 of steps 1 and 3; 14 calls.
    static let w1 = """
        name: w1
        models:
          script:
            backend: scripted
            script:
              planner:
                - reply:
                    steps:
                      - "step 0: do part 0 of the task"
                      - "step 1: do part 1 of the task"
                      - "step 2: do part 2 of the task"
                      - "step 3: do part 3 of the task"
              actor:
                - feedback: true
                  reply: {output: "output for step {step}, attempt {attempt} (revised after feedback)"}
                - reply: {output: "output for step {step}, attempt {attempt}"}
              critic:
                - step: [1, 3]
                  attempt: 0
                  reply: {verdict: "fail", score: 0.35, feedback: "step {step}: missing detail, be more specific"}
                - reply: {verdict: "pass", score: 0.9, feedback: "ok"}
              verifier:
                - reply: {verified: true}
        roles:
          planner: {model: script, prompt: "Split the goal into steps."}
          actor: {model: script, prompt: "Carry out the step."}
          critic: {model: script, prompt: "Judge the step's output."}
          verifier: {model: script, prompt: "Decide whether the goal is met."}
        policy:
          max_attempts: 3
        """

    /// One fixed step; the critic's replies are given.
    static func oneStep(critic: String, policy: String = "") -> String {
        """
        name: one-step
        models:
          script:
            backend: scripted
            script:
              actor:
                - reply: {output: "the output"}
              critic:
        \(critic)
              verifier:
                - reply: {verified: true, reason: "looks right"}
        roles:
          actor: {model: script, prompt: "Act."}
          critic: {model: script, prompt: "Judge."}
          verifier: {model: script, prompt: "Verify."}
        steps: ["the only step"]
        \(policy)
        """
    }

    /// A plan whose actor is a command that signals `ready` and then sleeps.
    static func blocking(ready: String, marker: String) -> String {
        """
        name: blocking
        models:
          slow:
            backend: command
            command: [sh, -c, "echo up > '\(ready)'; sleep \(marker)", "sh-\(marker)"]
            sandbox: false  # it signals the test through a FIFO outside any workspace
          script:
            backend: scripted
            script:
              critic:
                - reply: {verdict: pass, score: 1, feedback: ok}
              verifier:
                - reply: {verified: true}
        roles:
          actor: {model: slow, prompt: "Act slowly."}
          critic: {model: script, prompt: "Judge."}
          verifier: {model: script, prompt: "Verify."}
        steps: ["wait"]
        """
    }

    private func assertWellFormedLog(_ events: [EventRecord], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(events.map(\.seq), Array(1...max(1, events.count)), "seq numbers from 1 without gaps", file: file, line: line)
        XCTAssertEqual(events.first?.kind, EventKind.jobSubmitted.rawValue, file: file, line: line)
        var open: Set<String> = []
        var completed: [String: Int] = [:]
        for event in events {
            switch event.kind {
            case EventKind.callStarted.rawValue:
                XCTAssertTrue(
                    open.insert(event.callID ?? "?").inserted, "call \(event.callID ?? "?") started twice", file: file, line: line)
            case EventKind.callCompleted.rawValue, EventKind.callFailed.rawValue:
                XCTAssertNotNil(
                    open.remove(event.callID ?? "?"), "call \(event.callID ?? "?") completed without starting", file: file, line: line)
                completed[event.callID ?? "?", default: 0] += 1
            default: break
            }
        }
        XCTAssertEqual(Set(completed.values).subtracting([1]), [], "no call completed twice", file: file, line: line)
    }

    // MARK: Running jobs

    func testW1JobSucceedsWithFourteenCalls() async throws {
        let harness = try EngineHarness()
        let submitted = try await harness.submit(Self.w1, goal: "job 1: summarise the quarterly report")
        XCTAssertEqual(submitted.status, .queued)
        XCTAssertTrue(JobIDGenerator.isValid(submitted.id))
        let finished = try await harness.wait(submitted.id)
        XCTAssertEqual(finished.status, .succeeded)
        XCTAssertNotNil(finished.finishedAt)

        let events = try harness.events(submitted.id)
        assertWellFormedLog(events)
        XCTAssertEqual(events.filter { $0.kind == EventKind.callCompleted.rawValue }.count, 14)
        let calls = try harness.reader.readNow { try $0.completedCalls(jobID: submitted.id) }
        XCTAssertEqual(calls, ["planner": 1, "actor": 6, "critic": 6, "verifier": 1])
        XCTAssertEqual(events.last?.kind, EventKind.jobState.rawValue)
        XCTAssertEqual(events.last?.payload["to"], "succeeded")

        // The critic's two failures, and the reruns they caused, which carry the feedback.
        let verdicts = events.filter { $0.kind == EventKind.callCompleted.rawValue && $0.role == "critic" }
            .map { "\($0.step ?? -1)/\($0.attempt ?? -1):\($0.payload["verdict"]?["verdict"]?.stringValue ?? "?")" }
        XCTAssertEqual(verdicts, ["0/0:pass", "1/0:fail", "1/1:pass", "2/0:pass", "3/0:fail", "3/1:pass"])
        let rerun = events.first { $0.kind == EventKind.callStarted.rawValue && $0.role == "actor" && $0.step == 1 && $0.attempt == 1 }
        let rerunInput = rerun?.payload["request"]?["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
        XCTAssertTrue(rerunInput.contains("Critic feedback: step 1: missing detail, be more specific"), rerunInput)
        XCTAssertTrue(rerunInput.contains("Rejected output: output for step 1, attempt 0"), rerunInput)
        try await harness.stop()
    }

    /// Each juror is its own critic agent on the bus while its job runs, and none is left once the
    /// job ends.
    func testAJurysAgentsAreDroppedWithItsJob() async throws {
        let harness = try EngineHarness()
        let plan = """
            name: jury
            models:
              m:
                backend: scripted
                script:
                  actor: [{reply: {output: x}}]
                  critic: [{reply: {verdict: pass, score: 0.9, feedback: fine}}]
            roles:
              actor: {model: m, prompt: act}
              critic:
                jury: [{model: m, prompt: a}, {model: m, prompt: b}, {name: third, model: m, prompt: c}]
                rule: unanimous
              verifier: {command: [sh, -c, "exit 0"], sandbox: false}
            steps: [one]
            """
        let submitted = try await harness.submit(plan)
        let finished = try await harness.wait(submitted.id)
        XCTAssertEqual(finished.status, .succeeded)
        let agents = try harness.events(submitted.id).filter { $0.kind == EventKind.callStarted.rawValue && $0.role == "critic" }
            .compactMap { $0.payload["agent"]?.stringValue }
        XCTAssertEqual(Set(agents), ["critic/\(submitted.id)/juror1", "critic/\(submitted.id)/juror2", "critic/\(submitted.id)/third"])
        let left = try await harness.onLoop { $0.bus.agentCount }
        XCTAssertEqual(left, 0, "the jurors' agents are unregistered with the job's")
        try await harness.stop()
    }

    func testInvalidVerdictIsRecordedAndAskedAgain() async throws {
        let harness = try EngineHarness()
        let critic = """
                    - reask: 0
                      raw: "not json"
                    - reask: 1
                      reply: {verdict: pass, score: 0.8, feedback: "fine now"}
            """
        let job = try await harness.submit(Self.oneStep(critic: critic))
        let finished = try await harness.wait(job.id)
        XCTAssertEqual(finished.status, .succeeded)

        let events = try harness.events(job.id)
        assertWellFormedLog(events)
        let criticCalls = events.filter { $0.role == "critic" && $0.kind == EventKind.callCompleted.rawValue }
        XCTAssertEqual(criticCalls.count, 2)
        let invalid = criticCalls.first?.payload["invalid"]?.stringValue ?? ""
        XCTAssertTrue(invalid.contains("not JSON"), invalid)
        XCTAssertNil(criticCalls.first?.payload["verdict"])
        XCTAssertEqual(criticCalls.last?.payload["verdict"]?["verdict"], "pass")

        let reasked = events.filter { $0.role == "critic" && $0.kind == EventKind.callStarted.rawValue }.last
        XCTAssertEqual(reasked?.payload["reask"], 1)
        let messages = reasked?.payload["request"]?["messages"]?.arrayValue ?? []
        XCTAssertEqual(messages.dropLast().last?["content"], "not json")
        XCTAssertTrue(messages.last?["content"]?.stringValue?.contains("That reply was invalid") ?? false)
        // The step passed on the valid verdict, not on the invalid one: one actor call, no rerun.
        XCTAssertEqual(events.filter { $0.role == "actor" && $0.kind == EventKind.callCompleted.rawValue }.count, 1)
        try await harness.stop()
    }

    func testVerdictsThatNeverParseFailTheStepNeverPassIt() async throws {
        let harness = try EngineHarness()
        let critic = """
                    - raw: "{\\"verdict\\": \\"maybe\\", \\"score\\": 1, \\"feedback\\": \\"hmm\\"}"
            """
        let job = try await harness.submit(Self.oneStep(critic: critic, policy: "policy: {max_attempts: 1, max_invalid_replies: 1}"))
        let finished = try await harness.wait(job.id)
        XCTAssertEqual(finished.status, .failed)
        XCTAssertTrue(finished.reason?.contains("no valid verdict after 2 tries") ?? false, finished.reason ?? "")

        let events = try harness.events(job.id)
        assertWellFormedLog(events)
        let criticCalls = events.filter { $0.role == "critic" && $0.kind == EventKind.callCompleted.rawValue }
        XCTAssertEqual(criticCalls.count, 2)
        XCTAssertTrue(criticCalls.allSatisfy { $0.payload["invalid"] != nil })
        XCTAssertFalse(events.contains { $0.role == "verifier" }, "a job whose step never passed is not verified")
        try await harness.stop()
    }

    func testInvalidPlanIsRefused() async throws {
        let harness = try EngineHarness()
        do {
            _ = try await harness.submit("name: broken\nmodels: {}\n")
            XCTFail("an invalid plan was accepted")
        } catch let error as EngineError {
            XCTAssertEqual(RPCError(error).code, RPCError.Code.invalidPlan.rawValue)
        }
        let jobs = try harness.reader.readNow { try $0.jobs(status: nil, limit: 10) }
        XCTAssertEqual(jobs, [])
        try await harness.stop()
    }

    // MARK: Idempotency

    func testRepeatedIdempotencyKeyReturnsTheFirstJob() async throws {
        let harness = try EngineHarness()
        let first = try await harness.onLoop {
            try await $0.submit(.init(SubmitParams(planText: Self.w1, goal: "first", idempotencyKey: "k1")))
        }
        XCTAssertTrue(first.created)
        _ = try await harness.wait(first.job.id)
        let again = try await harness.onLoop {
            try await $0.submit(.init(SubmitParams(planText: Self.w1, goal: "second", idempotencyKey: "k1")))
        }
        XCTAssertFalse(again.created)
        XCTAssertEqual(again.job.id, first.job.id)
        XCTAssertEqual(again.job.goal, "first")
        XCTAssertEqual(again.job.status, .succeeded)
        let other = try await harness.onLoop {
            try await $0.submit(.init(SubmitParams(planText: Self.w1, goal: "third", idempotencyKey: "k2")))
        }
        XCTAssertTrue(other.created)
        XCTAssertNotEqual(other.job.id, first.job.id)
        _ = try await harness.wait(other.job.id)
        XCTAssertEqual(try harness.reader.readNow { try $0.jobs(status: nil, limit: 10) }.count, 2)
        try await harness.stop()
    }

    func testConcurrentSubmitsWithOneKeyCreateOneJob() async throws {
        let harness = try EngineHarness()
        let outcomes = try await harness.onLoop { engine -> [String] in
            func attempt(_ goal: String) async -> String {
                do {
                    let (job, created) = try await engine.submit(.init(SubmitParams(planText: Self.w1, goal: goal, idempotencyKey: "same")))
                    return "\(job.id) \(created ? "created" : "existing")"
                } catch {
                    return "error: \(error)"
                }
            }
            async let a = attempt("a")
            async let b = attempt("b")
            async let c = attempt("c")
            return await [a, b, c]
        }
        XCTAssertEqual(outcomes.filter { $0.hasPrefix("error") }, [], "every submission with the key gets its job")
        XCTAssertEqual(outcomes.filter { $0.hasSuffix(" created") }.count, 1, "\(outcomes)")
        XCTAssertEqual(Set(outcomes.filter { !$0.hasPrefix("error") }.map { $0.split(separator: " ")[0] }).count, 1, "\(outcomes)")
        let stored = try harness.reader.readNow { try $0.jobs(status: nil, limit: 10) }
        XCTAssertEqual(stored.count, 1)
        if let id = stored.first?.id {
            let finished = try await harness.wait(id)
            XCTAssertEqual(finished.status, .succeeded)
        }
        try await harness.stop()
    }

    // MARK: Cancellation

    func testCancelQueuedAndRunningJobs() async throws {
        let harness = try EngineHarness(maxRunning: 1)
        let marker = uniqueSleepMarker(seconds: 30)
        let ready = try ReadyPipe(in: harness.directory.path)
        defer { ready.close() }
        let plan = Self.blocking(ready: ready.path, marker: marker)

        let running = try await harness.submit(plan, goal: "runs")
        let queued = try await harness.submit(plan, goal: "waits")
        XCTAssertTrue(ready.waitForWriter(), "the first job's command started")
        let status = try await harness.onLoop { try await $0.status() }
        XCTAssertEqual(status.running, 1)
        XCTAssertEqual(status.queued, 1)

        // The queued job: cancelled without ever starting.
        let cancelledQueued = try await harness.onLoop { try await $0.cancel(queued.id) }
        XCTAssertEqual(cancelledQueued.status, .cancelled)
        let storedQueued = try await harness.wait(queued.id)
        XCTAssertEqual(storedQueued.status, .cancelled)
        XCTAssertEqual(storedQueued.reason, "cancelled by request")
        XCTAssertNotNil(storedQueued.finishedAt)
        let queuedEvents = try harness.events(queued.id)
        XCTAssertEqual(queuedEvents.map(\.kind), [EventKind.jobSubmitted.rawValue, EventKind.jobState.rawValue])
        XCTAssertEqual(queuedEvents.last?.payload["from"], "queued")
        XCTAssertEqual(queuedEvents.last?.payload["to"], "cancelled")

        // The running job: its call is abandoned and its command killed.
        _ = try await harness.waitForEvent(running.id) { $0.kind == EventKind.callStarted.rawValue && $0.role == "actor" }
        let cancelledRunning = try await harness.onLoop { try await $0.cancel(running.id) }
        XCTAssertEqual(cancelledRunning.status, .cancelled)
        XCTAssertEqual(cancelledRunning.reason, "cancelled by request")
        // The kill was queued on the loop before cancel() awaited its write, so it has been sent.
        XCTAssertEqual(liveProcesses(withMarker: marker), [], "the actor's command was killed")
        // Every runner has ended: what the store holds now is final. (Waiting through `wait()` here
        // is covered by testWaitRightAfterCancellingARunningJobReturns.)
        try await harness.drain()
        let storedRunning = try harness.reader.readNow { try $0.job(running.id) }
        XCTAssertEqual(storedRunning?.status, .cancelled)
        XCTAssertNotNil(storedRunning?.finishedAt)
        let runningEvents = try harness.events(running.id)
        XCTAssertFalse(runningEvents.contains { $0.kind == EventKind.callCompleted.rawValue }, "the abandoned call is not recorded")
        XCTAssertEqual(runningEvents.filter { $0.kind == EventKind.jobState.rawValue }.last?.payload["to"], "cancelled")
        XCTAssertEqual(runningEvents.filter { $0.kind == EventKind.jobState.rawValue && $0.payload["to"] == "cancelled" }.count, 1)

        // Cancelling a finished job changes nothing.
        let again = try await harness.onLoop { try await $0.cancel(queued.id) }
        XCTAssertEqual(again, storedQueued)
        XCTAssertEqual(try harness.events(queued.id).count, 2)
        let idle = try await harness.onLoop { $0.runningCount }
        XCTAssertEqual(idle, 0)
        try await harness.stop()
    }

    func testWaitRightAfterCancellingARunningJobReturns() async throws {
        let harness = try EngineHarness()
        let marker = uniqueSleepMarker(seconds: 30)
        let ready = try ReadyPipe(in: harness.directory.path)
        defer { ready.close() }
        let job = try await harness.submit(Self.blocking(ready: ready.path, marker: marker))
        XCTAssertTrue(ready.waitForWriter(), "the job's command started")
        _ = try await harness.waitForEvent(job.id) { $0.kind == EventKind.callStarted.rawValue && $0.role == "actor" }

        // cancel() has returned, so the job is cancelled: a wait() now must return, whether or not the
        // runner has wound down yet.
        let outcome = try await harness.cancelThenWait(job.id)
        XCTAssertEqual(outcome, "cancelled")
        try await harness.stop()
    }

    func testCancelUnknownJob() async throws {
        let harness = try EngineHarness()
        do {
            _ = try await harness.onLoop { try await $0.cancel("01NOSUCHJOB0000000") }
            XCTFail("cancelled a job that does not exist")
        } catch let error as EngineError {
            XCTAssertEqual(RPCError(error), .jobNotFound("01NOSUCHJOB0000000"))
        }
        try await harness.stop()
    }

    // MARK: Retry

    /// Whether a retry from step 3 should have answered `call` from the original: the plan and
    /// steps 1 and 2 (indices 0 and 1), nothing after.
    private static func reusedBeforeStep3(_ call: EventRecord) -> Bool {
        call.step.map { $0 < 2 } ?? (call.role == Role.planner.rawValue)
    }

    /// The runner's events as kind and call id, for comparing two runs' shapes.
    private static func shape(_ events: [EventRecord]) -> [String] {
        events.filter { !RetryPrefix.notReused.contains($0.kind) }.map { "\($0.kind) \($0.callID ?? "")" }
    }

    /// Runs W1, then a retry of it from step 3 to its end. Returns the harness (still running) and both jobs.
    private func retriedW1(_ harness: EngineHarness) async throws -> (original: JobRecord, retry: JobRecord) {
        let original = try await harness.submit(Self.w1, goal: "retry me")
        _ = try await harness.wait(original.id)
        let (retry, step) = try await harness.onLoop { try await $0.retry(RetryParams(id: original.id, fromStep: 3), client: nil) }
        XCTAssertEqual(step, 3)
        let finished = try await harness.wait(retry.id)
        XCTAssertEqual(finished.status, .succeeded)
        return (original, retry)
    }

    func testARetryAnswersTheCallsBeforeItsStepFromTheOriginalAndMakesTheRest() async throws {
        let harness = try EngineHarness()
        let (original, retry) = try await retriedW1(harness)
        let events = try harness.events(retry.id)
        let source = try harness.events(original.id)
        let calls = events.filter { $0.kind == EventKind.callStarted.rawValue }
        XCTAssertEqual(calls.map { RetryPrefix.source(of: $0) != nil }, calls.map(Self.reusedBeforeStep3), "\(calls.map(\.callID))")
        // Each copy is its original event, with its mark (and the agent naming the new job).
        for copy in events {
            guard let seq = RetryPrefix.source(of: copy), let from = source.first(where: { $0.seq == seq }) else { continue }
            XCTAssertEqual([copy.kind, copy.callID, copy.role], [from.kind, from.callID, from.role])
            XCTAssertEqual(copy.step, from.step)
            if copy.kind != EventKind.callStarted.rawValue { XCTAssertEqual(RetryPrefix.unmarked(copy.payload), from.payload) }
        }
        // W1 is deterministic: the same run, and the link on the original after its end.
        XCTAssertEqual(Self.shape(events), Self.shape(source))
        XCTAssertEqual(events.map(\.seq), Array(1...events.count))
        XCTAssertEqual(source.last?.kind, EventKind.jobRetried.rawValue)
        XCTAssertEqual(source.last?.payload(as: JobRetried.self), JobRetried(job: retry.id, fromStep: 3))
        let links = try harness.reader.readNow { try $0.retryLinks(jobID: retry.id) }
        XCTAssertEqual(links, RetryLinks(retryOf: original.id, fromStep: 3, reusedCalls: calls.filter(Self.reusedBeforeStep3).count))
        try await harness.stop()
    }

    /// A retry stopped while still reusing (after its second copied completion) is recovered from its
    /// own log and goes on reusing where it stopped: no call before its step is made.
    func testARetryRecoveredWhileReusingGoesOnReusing() async throws {
        let first = try EngineHarness()
        let (original, retry) = try await retriedW1(first)
        let originalEvents = try first.events(original.id)
        let retryEvents = try first.events(retry.id)
        let originalRecord = try XCTUnwrap(try first.reader.readNow { try $0.job(original.id) })
        var record = try XCTUnwrap(try first.reader.readNow { try $0.job(retry.id) })
        try await first.stop()

        let completions = retryEvents.indices.filter { retryEvents[$0].kind == EventKind.callCompleted.rawValue }
        let prefix = Array(retryEvents.prefix(completions[1] + 1))
        XCTAssertNotNil(RetryPrefix.source(of: prefix[prefix.count - 1]), "stopped among the copies")
        (record.status, record.reason, record.finishedAt) = (.running, nil, nil)
        let second = try EngineHarness()
        try await second.writer.write(
            [.insertJob(originalRecord)] + originalEvents.map(WriteOp.append) + [.insertJob(record)] + prefix.map(WriteOp.append))
        let unfinished = try second.reader.readNow { try Engine.Unfinished.read(record, from: $0) }
        try await second.onLoop { $0.recover([unfinished]) }
        let finished = try await second.wait(retry.id)
        XCTAssertEqual(finished.status, .succeeded, finished.reason ?? "")
        let recovered = try second.events(retry.id)
        let calls = recovered.filter { $0.kind == EventKind.callStarted.rawValue }
        XCTAssertEqual(calls.map { RetryPrefix.source(of: $0) != nil }, calls.map(Self.reusedBeforeStep3), "\(calls.map(\.callID))")
        XCTAssertEqual(Self.shape(recovered), Self.shape(retryEvents), "the same run as without the stop")
        XCTAssertEqual(recovered.map(\.seq), Array(1...recovered.count))
        XCTAssertFalse(recovered.contains { $0.kind == EventKind.callRestarted.rawValue })
        try await second.stop()
    }

    /// Refusals name the problem: an unknown job, a step out of range, a job that has not finished.
    func testARetryIsRefusedForAnUnknownJobOrAStepOutOfRange() async throws {
        let harness = try EngineHarness()
        let original = try await harness.submit(Self.w1)
        _ = try await harness.wait(original.id)
        func refusal(_ params: RetryParams) async -> String {
            do {
                _ = try await harness.onLoop { try await $0.retry(params, client: nil) }
                return "accepted"
            } catch let error as EngineError {
                return error.description
            } catch {
                return "\(error)"
            }
        }
        let unknown = await refusal(RetryParams(id: "01NOSUCHJOB0000000"))
        XCTAssertEqual(unknown, "no such job: 01NOSUCHJOB0000000")
        let outOfRange = await refusal(RetryParams(id: original.id, fromStep: 5))
        XCTAssertEqual(outOfRange, "invalid params: 'from_step' 5 is out of range for job \(original.id): it reached steps 1 to 4")
        try await harness.stop()
    }

    // MARK: Recovery

    /// Runs W1 to the end in one engine, then gives a second engine (a restarted daemon) the job as
    /// it stood after `cut` events, and lets it finish.
    private func recover(cutAfter cut: (_ events: [EventRecord]) -> Int) async throws -> (
        original: [EventRecord], recovered: [EventRecord], prefix: Int, status: JobStatus
    ) {
        let first = try EngineHarness()
        let job = try await first.submit(Self.w1, goal: "recover me")
        _ = try await first.wait(job.id)
        let original = try first.events(job.id)
        var record = try XCTUnwrap(try first.reader.readNow { try $0.job(job.id) })
        try await first.stop()

        let prefixCount = cut(original)
        let prefix = Array(original.prefix(prefixCount))
        record.status = .running
        record.reason = nil
        record.finishedAt = nil
        let second = try EngineHarness()
        try await second.writer.write([.insertJob(record)] + prefix.map(WriteOp.append))
        let unfinished = Engine.Unfinished(record: record, events: prefix)
        try await second.onLoop { engine in
            engine.recover([unfinished])
        }
        let finished = try await second.wait(job.id)
        let recovered = try second.events(job.id)
        try await second.stop()
        return (original, recovered, prefixCount, finished.status)
    }

    func testRecoveredJobDoesNotRepeatCompletedCalls() async throws {
        let run = try await recover { events in
            // Stop right after the fifth completed call.
            let completions = events.indices.filter { events[$0].kind == EventKind.callCompleted.rawValue }
            return completions[4] + 1
        }
        XCTAssertEqual(run.status, .succeeded)
        XCTAssertEqual(Array(run.recovered.prefix(run.prefix)), Array(run.original.prefix(run.prefix)), "history is kept")
        XCTAssertEqual(run.recovered[run.prefix].kind, "job.resumed")
        XCTAssertEqual(run.recovered.map(\.seq), Array(1...run.recovered.count))
        XCTAssertFalse(run.recovered.contains { $0.kind == "call.restarted" })
        let started = run.recovered.filter { $0.kind == EventKind.callStarted.rawValue }.map { $0.callID ?? "?" }
        XCTAssertEqual(started.count, Set(started).count, "no call was made twice")
        XCTAssertEqual(run.recovered.filter { $0.kind == EventKind.callCompleted.rawValue }.count, 14)
        // The same run as without the restart, apart from the resume note.
        let shape = { (events: [EventRecord]) in events.filter { $0.kind != "job.resumed" }.map { "\($0.kind) \($0.callID ?? "")" } }
        XCTAssertEqual(shape(run.recovered), shape(run.original))
    }

    func testCallInFlightAtTheStopIsMadeAgain() async throws {
        let run = try await recover { events in
            // Stop after the sixth call started and before it completed.
            let starts = events.indices.filter { events[$0].kind == EventKind.callStarted.rawValue }
            return starts[5] + 1
        }
        XCTAssertEqual(run.status, .succeeded)
        let inFlight = try XCTUnwrap(run.original[run.prefix - 1].callID)
        XCTAssertEqual(
            run.recovered.filter { $0.callID == inFlight }.map(\.kind),
            [
                EventKind.callStarted.rawValue, "call.restarted", EventKind.callCompleted.rawValue,
            ])
        XCTAssertEqual(run.recovered.filter { $0.kind == EventKind.callCompleted.rawValue }.count, 14)
        XCTAssertEqual(run.recovered.map(\.seq), Array(1...run.recovered.count))
    }
}
