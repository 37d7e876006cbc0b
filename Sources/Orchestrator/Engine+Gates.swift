import Agents
import Foundation
import Store

/// The gates waiting for a person, and people's decisions on them (`gate.list`, `gate.decide`).
/// A decision is handed to the job's runner, which records it (`gate.decided`) before the call runs
/// or is refused; the reply goes out once it is committed. Loop thread only, like the engine.
extension Engine {
    /// Every gate waiting for a person, oldest first.
    public func waitingGates() -> [WaitingGateInfo] {
        loop.assertInLoop()
        var gates: [WaitingGateInfo] = []
        for entry in active.values {
            guard case let .running(run) = entry.phase, let waiting = run.runner.waitingGateOnLoop else { continue }
            gates.append(
                WaitingGateInfo(
                    job: entry.record.id, plan: entry.record.planName, goal: entry.record.goal, gate: waiting.gate, step: waiting.step,
                    attempt: waiting.attempt, tool: waiting.tool, arguments: waiting.arguments, requestSHA256: waiting.requestSHA256,
                    requestedAt: Int(waiting.requestedAt)))
        }
        return gates.sorted { ($0.requestedAt, $0.job) < ($1.requestedAt, $1.job) }
    }

    /// Hands `decision` from `client` to its gate and returns the seq of the recorded `gate.decided`.
    /// Refused: a client who may not decide (`TrustPolicy.decisionProblem`; the refusal is logged and
    /// recorded in the job), a gate that does not wait, a request digest that is not the gate's.
    public func decide(_ decision: GateDecideParams, client: UInt32?) async throws(EngineError) -> Int {
        loop.assertInLoop()
        guard let entry = active[decision.job] else {
            let job = try await requireStoredJob(decision.job)
            throw .gateNotWaiting("job \(job.id) is \(job.status.rawValue): gate \(decision.gate) does not wait for a decision")
        }
        let uid = client ?? UInt32(geteuid())
        let user = TrustPolicy.userName(uid)
        if let problem = configuration.trust.decisionProblem(client) {
            logger.warning(
                "a gate decision was refused", metadata: ["job.id": "\(decision.job)", "gate": "\(decision.gate)", "uid": "\(uid)"])
            if case .running = entry.phase {
                _ = try? await entry.log.append([
                    EventDraft(GateRefused(gate: decision.gate, uid: Int(uid), user: user, reason: problem))
                ])
            }
            throw .permissionDenied(problem)
        }
        guard case let .running(run) = entry.phase else {
            throw .gateNotWaiting(
                "job \(decision.job) is \(entry.record.status.rawValue): gate \(decision.gate) does not wait for a decision")
        }
        if let fault = writer.storageFault { throw .storageUnavailable(fault, refusing: "decisions") }
        if run.runner.waitingGateOnLoop?.tool == JobRunner.stepOutputTool, let edited = decision.arguments,
            (try? JSON.parse(edited))?["output"]?.stringValue == nil
        {
            throw .invalidInput("'arguments' of a step's output under review must be {\"output\": \"the text to accept\"}")
        }
        let outcome: Result<Int, EngineError> = await withCheckedContinuation { continuation in
            let person = PersonDecision(
                approve: decision.approve, uid: Int(uid), user: user, note: decision.note, editedArguments: decision.arguments,
                committed: { continuation.resume(returning: $0) })
            if let problem = run.runner.decideOnLoop(gate: decision.gate, digest: decision.requestSHA256, person) {
                continuation.resume(returning: .failure(.gateNotWaiting(problem)))
            }
        }
        return try outcome.get()
    }
}
