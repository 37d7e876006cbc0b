import Store

/// What clients ask about jobs: the committed record, lists, events, waiting for the end and
/// watching live. Every answer describes committed state. Loop thread only, like the engine.
extension Engine {
    /// The job as committed (a job is visible only once its submission is durable).
    public func job(_ id: String) async throws(EngineError) -> JobRecord {
        try await requireStoredJob(id)
    }

    func storedJob(_ id: String) async throws(EngineError) -> JobRecord? {
        do {
            return try await reader.read { try $0.job(id) }
        } catch {
            throw .storage(error.description)
        }
    }

    func requireStoredJob(_ id: String) async throws(EngineError) -> JobRecord {
        guard let job = try await storedJob(id) else { throw .jobNotFound(id) }
        return job
    }

    public func list(status: JobStatus?, limit: Int) async throws(EngineError) -> [JobRecord] {
        do {
            return try await reader.read { try $0.jobs(status: status, limit: limit) }
        } catch {
            throw .storage(error.description)
        }
    }

    public func events(_ id: String, afterSeq: Int, limit: Int) async throws(EngineError) -> [EventRecord] {
        _ = try await job(id)
        do {
            return try await reader.read { try $0.events(jobID: id, afterSeq: afterSeq, limit: limit) }
        } catch {
            throw .storage(error.description)
        }
    }

    /// The job as committed and what its completed calls used, per role, read together.
    public func jobWithUsage(_ id: String) async throws(EngineError) -> (JobRecord, [String: RoleUsage], RetryLinks) {
        let found: (JobRecord, [String: RoleUsage], RetryLinks)?
        do {
            found = try await reader.read { db in try db.job(id).map { ($0, try db.usage(jobID: id), try db.retryLinks(jobID: id)) } }
        } catch {
            throw .storage(error.description)
        }
        guard let found else { throw .jobNotFound(id) }
        return found
    }

    /// Returns once the job is terminal.
    public func wait(_ id: String) async throws(EngineError) -> JobRecord {
        loop.assertInLoop()
        // Registered only if the job is still running when the task gets into the continuation's body
        // (it may get there later than this line); otherwise its final state is read back.
        let final: JobRecord? = await withUnsafeContinuation { c in
            if let announced = active[id]?.announced { return c.resume(returning: announced) }
            guard holds(id) else { return c.resume(returning: nil) }
            hub.wait(jobID: id) { c.resume(returning: $0) }
        }
        if let final { return final }
        return try await job(id)
    }

    /// Streams a job's committed events after `since` to `deliver`, history first, then live, in
    /// `seq` order without gaps or repeats; returns the job once it is terminal and everything up to
    /// its final event was delivered. `whenClosed` registers what ends the watch early (the client's
    /// connection closing), so an abandoned watch holds nothing.
    ///
    /// The history is read `historyPage` events at a time, and after each event delivered `pace` is
    /// awaited: it returns when the client can take more (false once it is gone), so a long history
    /// is never read or queued faster than the client reads it.
    public func watch(
        _ id: String, since: Int, deliver: @escaping (EventRecord) -> Void,
        pace: () async -> Bool = { true },
        whenClosed: (@escaping () -> Void) -> Void = { _ in }
    ) async throws(EngineError) -> JobRecord {
        loop.assertInLoop()
        let record = try await job(id)
        var lastSent = since
        var buffered: [EventRecord] = []
        var live = false
        var closed = false
        var finished: UnsafeContinuation<Void, Never>?
        var terminalSeen = record.status.isTerminal
        let subscription = hub.subscribe(jobID: id) { event in
            guard !closed else { return }
            if !live {
                buffered.append(event)
                return
            }
            guard event.seq > lastSent else { return }
            lastSent = event.seq
            deliver(event)
            if Self.isTerminal(event) {
                terminalSeen = true
                finished?.resume()
                finished = nil
            }
        }
        defer { hub.unsubscribe(subscription) }
        whenClosed {
            closed = true
            finished?.resume()
            finished = nil
        }
        var after = since
        while !closed {
            let page: [EventRecord]
            do {
                page = try await reader.read { [after] in try $0.events(jobID: id, afterSeq: after, limit: Self.historyPage) }
            } catch {
                throw .storage(error.description)
            }
            for event in page where event.seq > lastSent && !closed {
                lastSent = event.seq
                deliver(event)
                if Self.isTerminal(event) { terminalSeen = true }
                if !(await pace()) { closed = true }
            }
            guard page.count == Self.historyPage, let last = page.last else { break }
            after = last.seq
        }
        // Live events that came while the history was read: those not in it follow (no await
        // between here and going live, so none can slip between the two).
        for event in buffered where event.seq > lastSent && !closed {
            lastSent = event.seq
            deliver(event)
            if Self.isTerminal(event) { terminalSeen = true }
        }
        buffered = []
        live = true
        if !terminalSeen, !closed, holds(id) {
            await withUnsafeContinuation { (c: UnsafeContinuation<Void, Never>) in
                // Checked again: the terminal event may have come while the task got here.
                if terminalSeen || closed || !holds(id) { c.resume() } else { finished = c }
            }
        }
        return try await job(id)
    }

    /// Events read from the store per page of a watch's history.
    static let historyPage = 256

    private static func isTerminal(_ event: EventRecord) -> Bool {
        event.payload(as: JobState.self)?.to.isTerminal ?? false
    }
}
