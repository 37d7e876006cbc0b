import Store

/// `job.cancel`: the job's state machine from `queued` or `running` through `cancelling` to
/// `finished` (see `ActiveJob`). Loop thread only, like the engine.
extension Engine {
    /// Cancels a job that has not finished; its running call is abandoned and its child processes are
    /// killed. Returns the job as it now stands (a finished job is returned unchanged).
    public func cancel(_ id: String) async throws(EngineError) -> JobRecord {
        loop.assertInLoop()
        guard let entry = active[id] else { return try await requireStoredJob(id) }
        let run: ActiveJob.Run?
        switch entry.phase {
        case .submitting, .refused: throw .jobNotFound(id)
        case let .finished(record, _): return record
        case .cancelling: return try await wait(id)
        case .queued: run = nil
        case let .running(started): run = started
        }
        if let fault = writer.storageFault { throw .storageUnavailable(fault, refusing: "cancellations") }
        if run?.runner.finalizingOnLoop == true {
            // The runner is writing the job's final state: report that instead.
            return try await wait(id)
        }
        let from = entry.record.status
        queued.remove(id)
        entry.phase = .cancelling(from: from, stopping: run)
        entry.record.status = .cancelled
        entry.record.reason = "cancelled by request"
        run?.stop(.cancelled)
        let events: [EventRecord]
        do {
            events = try await entry.log.append(
                [
                    EventDraft(JobState(from: from, to: .cancelled, reason: "cancelled by request"))
                ],
                ops: [.setStatus(jobID: id, status: .cancelled, reason: "cancelled by request", at: clock.nowMillis())])
        } catch {
            if let fault = (error as? StoreError).flatMap({ $0.isStorageFault ? writer.storageFault : nil }) {
                // Not recorded, so not cancelled: the job resumes with the others once writes succeed,
                // with a new log (this one refuses writes now), after its runner (if any) has ended.
                entry.record.status = from
                entry.record.reason = nil
                if let run { entry.phase = .running(run) } else { retire(id) }
                stoppedByStorage.insert(id)
                throw .storageUnavailable(fault, refusing: "cancellations")
            }
            throw .storage("\(error)")
        }
        entry.record.finishedAt = events.last?.at
        if let run { entry.record.startedAt = run.runner.startedAtOnLoop }
        entry.phase = .finished(entry.record, stopping: run)
        if run == nil {
            // Never started: nothing else will finish it.
            retire(id)
            finishedCount += 1
        }
        announceFinished(entry.record)
        return entry.record
    }
}
