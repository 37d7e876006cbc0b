/// The lifecycle state of a job.
public enum JobStatus: String, Sendable, CaseIterable {
    case queued, running
    case awaitingApproval = "awaiting_approval"
    case succeeded, failed, cancelled

    /// A terminal job never changes again.
    public var isTerminal: Bool {
        switch self {
        case .succeeded, .failed, .cancelled: return true
        case .queued, .running, .awaitingApproval: return false
        }
    }
}

/// A row of the `jobs` table.
public struct JobRecord: Sendable, Equatable {
    public var id: String
    public var planName: String
    /// The plan snapshot as JSON text: the job never depends on the plan file again.
    public var plan: String
    public var goal: String
    public var inputs: JSON
    public var cwd: String?
    public var idempotencyKey: String?
    public var status: JobStatus
    public var reason: String?
    public var createdAt: Int64
    public var startedAt: Int64?
    public var finishedAt: Int64?

    public init(
        id: String, planName: String, plan: String, goal: String, inputs: JSON, cwd: String?, idempotencyKey: String?,
        status: JobStatus, reason: String? = nil, createdAt: Int64, startedAt: Int64? = nil, finishedAt: Int64? = nil
    ) {
        self.id = id
        self.planName = planName
        self.plan = plan
        self.goal = goal
        self.inputs = inputs
        self.cwd = cwd
        self.idempotencyKey = idempotencyKey
        self.status = status
        self.reason = reason
        self.createdAt = createdAt
        self.startedAt = startedAt
        self.finishedAt = finishedAt
    }
}

/// One entry of a job's append-only event log.
///
/// `seq` numbers a job's events from 1 without gaps; `kind` is one of `EventKind`'s names. `payload`
/// holds what was really sent or received (the full model request, the raw reply, a verdict, a state
/// change).
public struct EventRecord: Sendable, Equatable {
    public var jobID: String
    public var seq: Int
    public var at: Int64
    public var kind: String
    public var role: String?
    public var step: Int?
    public var attempt: Int?
    public var callID: String?
    public var payload: JSON

    public init(
        jobID: String, seq: Int, at: Int64, kind: String, role: String? = nil, step: Int? = nil, attempt: Int? = nil,
        callID: String? = nil, payload: JSON
    ) {
        self.jobID = jobID
        self.seq = seq
        self.at = at
        self.kind = kind
        self.role = role
        self.step = step
        self.attempt = attempt
        self.callID = callID
        self.payload = payload
    }

    /// The event as one JSON object: the shape of `transcript --format jsonl` and of `job.event`.
    public var json: JSON {
        var members: [(String, JSON)] = [
            ("job", .string(jobID)), ("seq", .int(seq)), ("at", .number(Double(at))), ("kind", .string(kind)),
        ]
        members.append(("role", role.map(JSON.string) ?? .null))
        members.append(("step", step.map(JSON.int) ?? .null))
        members.append(("attempt", attempt.map(JSON.int) ?? .null))
        if let callID { members.append(("call", .string(callID))) }
        members.append(("payload", payload))
        return .object(members)
    }
}

/// The event kinds agentd writes: the `kind` column of `events`, and the rows of its `event_kinds` table.
///
/// The raw values are stored and hashed into each job's chain: they never change. A new kind is a new
/// case here and a new migration that inserts its name into `event_kinds` (the database refuses an
/// event of a kind that table does not list); `MigrationsTests` checks that the two agree. Pure.
public enum EventKind: String, Sendable, CaseIterable {
    case jobSubmitted = "job.submitted"
    case jobState = "job.state"
    case jobReplanned = "job.replanned"
    case callStarted = "call.started"
    case callCompleted = "call.completed"
    case callFailed = "call.failed"
    case stepExhausted = "step.exhausted"
    case stepTimedOut = "step.timed_out"
    case stepInfeasible = "step.infeasible"
    case gateRequested = "gate.requested"
    case gateDecided = "gate.decided"
    case gateRefused = "gate.refused"
    case attemptDuplicate = "attempt.duplicate"
    case candidateStarted = "candidate.started"
    case candidateJudged = "candidate.judged"
    case candidateChosen = "candidate.chosen"
    case jobResumed = "job.resumed"
    case callRestarted = "call.restarted"
    case toolStarted = "tool.started"
    case toolCompleted = "tool.completed"
    case toolRestarted = "tool.restarted"
    case jobRetried = "job.retried"
    case stepChecked = "step.checked"
    case juryConvened = "jury.convened"
    case juryVoted = "jury.voted"
    case juryDecided = "jury.decided"
}

extension EventRecord {
    /// The record's kind as a known `EventKind`; nil for a name this build does not know.
    public var eventKind: EventKind? { EventKind(rawValue: kind) }
}
