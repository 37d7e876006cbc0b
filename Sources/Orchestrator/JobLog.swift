import Store

/// An event a job is about to write; the log gives it its `seq` and time.
struct EventDraft: Sendable {
    var kind: String
    var role: String?
    var step: Int?
    var attempt: Int?
    var callID: String?
    var payload: JSON

    /// An event to record: `event`'s kind and stored form.
    init(_ event: some RecordedEvent, role: String? = nil, step: Int? = nil, attempt: Int? = nil, callID: String? = nil) {
        self.kind = type(of: event).kind.rawValue
        self.role = role
        self.step = step
        self.attempt = attempt
        self.callID = callID
        self.payload = event.json
    }

    /// What a replaying runner expects next: an event of `kind` for `callID`, already recorded (it
    /// is matched, never written, so it has no payload).
    static func recorded(_ kind: EventKind, callID: String) -> EventDraft {
        EventDraft(kind: kind.rawValue, callID: callID)
    }

    private init(kind: String, callID: String) {
        self.kind = kind
        self.callID = callID
        self.payload = .null
    }
}

/// The recorded history of a job diverged from what its runner does on replay.
struct ReplayDivergence: Error, CustomStringConvertible {
    let seq: Int
    let expected: String
    let recorded: String

    var description: String { "recovery diverged at event \(seq): the runner expected \(expected), the log has \(recorded)" }
}

/// One job's append-only event log as its runner sees it: numbering, commit-before-deliver, replay.
///
/// `emit` gives each event the job's next `seq`, commits it through the store's writer and only then
/// returns and publishes it to watchers. After a restart the log is created with the job's recorded
/// events: while recorded events remain, `emit` matches the next one instead of writing, so a
/// recovered runner re-derives its state without doing anything twice. Events that only recovery
/// writes (`job.resumed`, `call.restarted`, `tool.restarted`) are skipped by that matching.
///
/// A retry (`agentd retry`) is created with the events it reuses of the job it retries
/// (`RetryPrefix`). After its own recorded events, `emit` matches those next: an event the runner
/// emits that is the same as the next reused one (same kind and call id, and the same request or
/// payload) is written to this log as a copy marked with the original's seq, and reported as
/// replayed, so the bus answers the call from the copy and makes no call. The first event that
/// differs ends the reuse for good: from there everything runs live, and a changed request is never
/// answered from the original. On recovery the copies among the job's own events say how far the
/// reuse got, and it goes on from there (or not at all, once a live event was written).
///
/// Loop thread only.
final class JobLog: @unchecked Sendable {
    /// Kinds the runner's deterministic sequence does not include: written at submission, or only by
    /// recovery.
    static let notFromRunner = RetryPrefix.notReused

    let jobID: String
    private let writer: StoreWriter
    private let clock: any WallClock
    private let publish: ([EventRecord]) -> Void
    private(set) var nextSeq: Int
    private var recorded: [EventRecord]
    /// The first recorded event not yet matched; those after it may already be (`matched`).
    private var cursor = 0
    /// Indices of recorded events after `cursor` matched out of order by concurrent branches.
    private var matched: Set<Int> = []
    /// Fan-outs in progress (`enterBranches`): while any is, events with a call id match out of order.
    private var branches = 0
    /// Whether a write is in flight, and the writes waiting for it: a job's writes commit one after
    /// the other, in `seq` order, even when its branches write at once.
    private var writing = false
    private var writers: [CheckedContinuation<Void, Never>] = []
    /// A retry's reusable events of the job it retries, and the next one to match.
    private let reuse: [EventRecord]
    private var reuseCursor = 0
    /// Deferred events (and their ops) waiting for the next write.
    private var staged: [EventRecord] = []
    private var stagedOps: [WriteOp] = []
    /// Set when a write failed: the log's numbering no longer matches the store, so every later
    /// write fails too and the job stops; the next start resumes it from what was committed.
    private var failed: (any Error)?

    /// The store's error when a write of this log failed.
    var writeFailure: StoreError? { failed as? StoreError }

    /// `reuse`: a retry's `RetryPrefix` (empty for any other job).
    init(
        jobID: String, lastSeq: Int, recorded: [EventRecord], reuse: [EventRecord] = [], writer: StoreWriter, clock: any WallClock,
        publish: @escaping ([EventRecord]) -> Void
    ) {
        self.jobID = jobID
        self.nextSeq = lastSeq + 1
        self.recorded = recorded.filter { !Self.notFromRunner.contains($0.kind) }
        self.reuse = reuse
        self.writer = writer
        self.clock = clock
        self.publish = publish
    }

    /// The current time, for timestamps written with the log's events.
    func now() -> Int64 { clock.nowMillis() }

    /// Replay (`agentd replay`): a replayed call's request must also equal the recorded one.
    var strictReplay = false

    /// Stops matching recorded events: after a divergence the runner's account of what happened no
    /// longer follows the log, so what it writes next (its failure) is appended after the log's end.
    func abandonReplay() {
        cursor = recorded.count
        matched = []
        reuseCursor = reuse.count
    }

    /// A fan-out starts: until it ends (`leaveBranches`), a recorded event with a call id is matched
    /// wherever it is among the events not yet matched, since concurrent branches completed their
    /// calls in whatever order they did; and one the record lacks is written live, since that branch
    /// is past its record while others may not be. Events without a call id still match in order.
    func enterBranches() { branches += 1 }

    func leaveBranches() { branches -= 1 }

    /// Whether concurrent branches are running.
    var inBranches: Bool { branches > 0 }

    /// The recorded events not yet matched, in order.
    private var unmatched: some Sequence<EventRecord> {
        (cursor..<recorded.count).lazy.filter { !self.matched.contains($0) }.map { self.recorded[$0] }
    }

    /// The index of the recorded event not yet matched that is of `kind` and has `callID`.
    private func unmatched(kind: String, callID: String) -> Int? {
        (cursor..<recorded.count).first { !matched.contains($0) && recorded[$0].callID == callID && recorded[$0].kind == kind }
    }

    /// Marks recorded event `index` matched and moves the cursor past every matched event.
    private func match(_ index: Int) {
        matched.insert(index)
        while cursor < recorded.count, matched.remove(cursor) != nil { cursor += 1 }
    }

    /// The recorded answer to call `callID` — an event of one of `kinds` — when the job's record has
    /// it: the next recorded event, or, while branches run, any not yet matched.
    func recordedAnswer(to callID: String, kinds: Set<EventKind>) -> EventRecord? {
        if inBranches, isReplaying {
            return unmatched.first { $0.callID == callID && $0.eventKind.map(kinds.contains) == true }
        }
        guard let next = nextRecorded, next.callID == callID, let kind = next.eventKind, kinds.contains(kind) else { return nil }
        return next
    }

    /// Whether the record says the step in progress ran out of time from here: its `step.timed_out`
    /// is the next recorded event, or, while branches run, one not yet matched.
    var timedOutAhead: Bool {
        guard inBranches, isReplaying else { return nextRecorded?.eventKind == .stepTimedOut }
        return unmatched.contains { $0.eventKind == .stepTimedOut }
    }

    /// Whether a recorded event not yet matched has `callID` (the call was made before the restart).
    func hasRecorded(callID: String) -> Bool {
        unmatched.contains { $0.callID == callID }
    }

    /// Whether the job's own recorded events remain to be matched (a recovery).
    var isReplaying: Bool { cursor < recorded.count }

    /// Whether a retry's reused events remain to be matched.
    var isReusing: Bool { reuseCursor < reuse.count }

    /// Whether the next call is answered from a record (the job's own or, for a retry, the original's).
    var answersFromRecord: Bool { isReplaying || isReusing }

    /// The next recorded event, without consuming it: the job's own, else the next reused one.
    var nextRecorded: EventRecord? {
        if isReplaying { return recorded[cursor] }
        return isReusing ? reuse[reuseCursor] : nil
    }

    /// Appends `draft` (with `ops` in the same transaction); during replay consumes the matching
    /// recorded event instead. Returns the event and whether it was replayed.
    ///
    /// Without `deferred`, returns once the event is committed. With `deferred`, the event is staged:
    /// it gets its `seq` now and is written in the same transaction as the next `emit` or `append`
    /// of this log — use it for what the runner only reads before its next step (an agent's reply, a
    /// state change that precedes a call), never for anything that must be durable before something
    /// leaves the process.
    @discardableResult
    func emit(_ draft: EventDraft, ops: [WriteOp] = [], deferred: Bool = false) async throws -> (event: EventRecord, replayed: Bool) {
        if isReplaying, inBranches, let callID = draft.callID {
            if let index = unmatched(kind: draft.kind, callID: callID) {
                match(index)
                followReuse(recorded[index])
                return (recorded[index], true)
            }
            // This branch is past its record: written live below.
            return try await write(draft, ops: ops, deferred: deferred)
        }
        if isReplaying {
            let next = recorded[cursor]
            guard next.kind == draft.kind, next.callID == draft.callID else {
                abandonReplay()
                throw ReplayDivergence(
                    seq: next.seq, expected: "\(draft.kind) \(draft.callID ?? "")", recorded: "\(next.kind) \(next.callID ?? "")")
            }
            match(cursor)
            followReuse(next)
            return (next, true)
        }
        if isReusing {
            let source = reuse[reuseCursor]
            if Self.reuses(draft, source) {
                reuseCursor += 1
                // The copy keeps the original's place in its step and, for an answer (a draft with
                // no payload), the original's payload; it is marked with where it came from.
                var copy = draft
                (copy.role, copy.step, copy.attempt) = (source.role, source.step, source.attempt)
                copy.payload = RetryPrefix.marking(draft.payload == .null ? source.payload : draft.payload, from: source.seq)
                let (event, _) = try await write(copy, ops: ops, deferred: deferred)
                return (event, true)
            }
            // Different from the original here: live from now on, never answered from it again.
            reuseCursor = reuse.count
        }
        return try await write(draft, ops: ops, deferred: deferred)
    }

    /// On recovery of a retry, each of its own events matched tells how far the reuse had got: a
    /// copy moves past the original event it copies, an event the job made itself ends the reuse.
    private func followReuse(_ own: EventRecord) {
        guard isReusing else { return }
        guard let seq = RetryPrefix.source(of: own), let index = reuse[reuseCursor...].firstIndex(where: { $0.seq == seq }) else {
            reuseCursor = reuse.count
            return
        }
        reuseCursor = index + 1
    }

    /// Whether the runner's `draft` is the original's `source` again, so its recorded answer holds:
    /// the same kind and call id and, for a request, the same request (the agent's id and a tool's
    /// idempotency key name the job, so they differ by design); for a gate's decision, the same
    /// decision (not the time it waited); anything else, the same payload.
    static func reuses(_ draft: EventDraft, _ source: EventRecord) -> Bool {
        guard draft.kind == source.kind, draft.callID == source.callID else { return false }
        if draft.payload == .null { return true }  // an answer the bus takes from the record
        switch source.eventKind {
        case .callStarted?:
            guard let mine = try? CallStarted(payload: draft.payload), let theirs = try? CallStarted(payload: source.payload) else {
                return false
            }
            return mine.request == theirs.request && mine.reask == theirs.reask
        case .toolStarted?:
            guard var mine = try? ToolStarted(payload: draft.payload), let theirs = try? ToolStarted(payload: source.payload) else {
                return false
            }
            mine.idempotencyKey = theirs.idempotencyKey
            return mine == theirs
        case .gateDecided?:
            // How long the decision waited is the clock's, not the decision's.
            guard var mine = try? GateDecided(payload: draft.payload), let theirs = try? GateDecided(payload: source.payload) else {
                return false
            }
            mine.waitedMs = theirs.waitedMs
            return mine == theirs
        default:
            return draft.payload == RetryPrefix.unmarked(source.payload)
        }
    }

    private func write(_ draft: EventDraft, ops: [WriteOp], deferred: Bool) async throws -> (event: EventRecord, replayed: Bool) {
        if deferred {
            if let failed { throw failed }
            let record = makeRecord(draft, at: clock.nowMillis())
            staged.append(record)
            stagedOps.append(contentsOf: Self.stamp(ops, at: record.at))
            return (record, false)
        }
        let events = try await append([draft], ops: ops)
        return (events[events.count - 1], false)
    }

    /// Writes staged events, if any, and returns once they are committed.
    func flush() async throws {
        if !staged.isEmpty { _ = try await append([]) }
    }

    /// Writes staged events and then `drafts` (with `ops`) in one transaction, and returns once it
    /// is committed, with every event it wrote. Used directly for what is not part of the runner's
    /// replayed sequence (submission, recovery notes, cancellation).
    func append(_ drafts: [EventDraft], ops: [WriteOp] = []) async throws -> [EventRecord] {
        while writing { await withCheckedContinuation { writers.append($0) } }
        writing = true
        defer {
            writing = false
            if !writers.isEmpty { writers.removeFirst().resume() }
        }
        if let failed { throw failed }
        let now = clock.nowMillis()
        var records = staged
        var all = stagedOps
        staged = []
        stagedOps = []
        records.reserveCapacity(records.count + drafts.count)
        for d in drafts { records.append(makeRecord(d, at: now)) }
        all.append(contentsOf: Self.stamp(ops, at: now))
        all.append(contentsOf: records.map(WriteOp.append))
        do {
            try await writer.write(all)
        } catch {
            failed = error
            throw error
        }
        publish(records)
        return records
    }

    private func makeRecord(_ d: EventDraft, at: Int64) -> EventRecord {
        defer { nextSeq += 1 }
        return EventRecord(
            jobID: jobID, seq: nextSeq, at: at, kind: d.kind, role: d.role, step: d.step, attempt: d.attempt,
            callID: d.callID, payload: d.payload)
    }

    /// A status change is stamped with the same time as the events written with it.
    private static func stamp(_ ops: [WriteOp], at: Int64) -> [WriteOp] {
        ops.map { op in
            if case let .setStatus(jobID, status, reason, _) = op {
                return .setStatus(jobID: jobID, status: status, reason: reason, at: at)
            }
            return op
        }
    }
}
