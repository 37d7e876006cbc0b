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

/// The event kinds agentd writes.
public enum EventKind {
    public static let jobSubmitted = "job.submitted"
    public static let jobState = "job.state"
    public static let jobReplanned = "job.replanned"
    public static let callStarted = "call.started"
    public static let callCompleted = "call.completed"
    public static let callFailed = "call.failed"
    public static let stepExhausted = "step.exhausted"
    public static let stepTimedOut = "step.timed_out"
    public static let attemptDuplicate = "attempt.duplicate"
    public static let jobResumed = "job.resumed"
    public static let callRestarted = "call.restarted"
    public static let toolStarted = "tool.started"
    public static let toolCompleted = "tool.completed"
    public static let toolRestarted = "tool.restarted"
}
