import Store

/// A step's time limit (`policy.step_timeout`): the step runs in a child task under a loop timer
/// armed at its first live call; when the time is up what it has in flight is abandoned and
/// `step.timed_out` recorded. On replay the recorded `step.timed_out` decides, not the clock (see the
/// type's description). The state it keeps (`timedStep`, `stepBody`, `stepTimer`, `stepExpired`) is
/// the runner's, on the loop thread.
extension JobRunner {
    /// `runStep` within `policy.step_timeout`, when the plan sets one (see the type's description).
    func runTimedStep(steps: [String], index: Int, replan: Int) async throws -> StepOutcome {
        let limit = plan.policy.stepTimeoutSeconds
        guard limit > 0 else { return try await runStep(steps: steps, index: index, replan: replan) }
        timedStep = index
        let body = Task(executorPreference: loop) { try await self.runStep(steps: steps, index: index, replan: replan) }
        stepBody = body
        defer { endTimedStep() }
        do {
            return try await withTaskCancellationHandler {
                try await body.value
            } onCancel: {
                body.cancel()
            }
        } catch is CallAbandoned where live && stepRanOut(index) {
            let what = "exceeded its time limit of \(Self.seconds(limit)) (policy.step_timeout)"
            try await log.emit(
                EventDraft(StepTimedOut(timeoutSeconds: limit, reason: "the step \(what)"), step: index, attempt: stepAttempt))
            return .failed(what, feedback: stepFeedback.isEmpty ? "the step \(what)" : stepFeedback)
        }
    }

    /// Whether the step's time is up: its timer fired, or (on replay) the log says so next. In
    /// concurrent branches, before call `callID`: the record lacks that call and holds the step's
    /// `step.timed_out` (the branch's other recorded calls may still be ahead of it).
    func stepRanOut(_ index: Int, before callID: String? = nil) -> Bool {
        if stepExpired { return true }
        if log.inBranches, log.isReplaying, let callID {
            return !log.hasRecorded(callID: callID) && log.timedOutAhead
        }
        guard let next = log.nextRecorded else { return false }
        return next.eventKind == .stepTimedOut && next.step == index
    }

    /// Before each call and tool of a timed step: throws `CallAbandoned` once the step's time is up.
    func checkStepTime(before callID: String) throws {
        if let index = timedStep, stepRanOut(index, before: callID) { throw CallAbandoned() }
    }

    /// The step timer's callback (loop thread): abandons what the step has in flight.
    nonisolated func stepTimeIsUp(_ index: Int) {
        assumeIsolated { runner in
            guard runner.timedStep == index else { return }
            runner.stepExpired = true
            runner.stepBody?.cancel()
        }
    }

    func endTimedStep() {
        stepTimer?.close()
        stepTimer = nil
        stepBody = nil
        timedStep = nil
        stepExpired = false
    }

    /// `5s`, `1.5s`.
    static func seconds(_ value: Double) -> String {
        (Int(exactly: value).map(String.init) ?? String(value)) + "s"
    }
}
