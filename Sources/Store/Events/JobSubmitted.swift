/// The payload of a `job.submitted` event, the first of every job: what was asked, by whom, where,
/// and what the chain commits the job's row to.
///
/// The engine writes the first five members; the store writer appends the two digests in the same
/// transaction as the row (`JobCommitment`). Members added after the first release are optional,
/// so every recorded job still decodes: `submitter_uid`, `workspace`, `retry_of`, `from_step`,
/// `format`, `plan_sha256`, `job_sha256`.
/// Pure; safe from any thread.
public struct JobSubmitted: RecordedEvent {
    public static let kind = EventKind.jobSubmitted

    /// The plan's name.
    public var plan: String
    public var goal: String
    public var inputs: JSON
    public var idempotencyKey: String?
    /// The user who submitted the job, when it was not the daemon's owner.
    public var submitterUID: Int?
    /// The workspace the job holds, so that a restarted daemon claims it again.
    public var workspace: String?
    /// A retry (`agentd retry`): the job it retries and the step (from 1) it runs live from; the
    /// original's calls before that step are reused (`RetryPrefix`).
    public var retryOf: String?
    public var fromStep: Int?
    /// The record format the job was written in (`RecordFormat`); nil in format 1.
    public var format: Int?
    /// `JobCommitment`'s digests of the stored row; nil in a job recorded before they existed.
    public var planSHA256: String?
    public var jobSHA256: String?

    public init(
        plan: String, goal: String, inputs: JSON, idempotencyKey: String? = nil, submitterUID: Int? = nil, workspace: String? = nil,
        retryOf: String? = nil, fromStep: Int? = nil, format: Int? = nil, planSHA256: String? = nil, jobSHA256: String? = nil
    ) {
        self.format = format
        self.plan = plan
        self.goal = goal
        self.inputs = inputs
        self.idempotencyKey = idempotencyKey
        self.submitterUID = submitterUID
        self.workspace = workspace
        self.retryOf = retryOf
        self.fromStep = fromStep
        self.planSHA256 = planSHA256
        self.jobSHA256 = jobSHA256
    }

    /// Decodes a recorded payload. Throws `EventPayloadError` naming the member that has the wrong shape.
    public init(payload: JSON) throws(EventPayloadError) {
        let r = try PayloadReader(Self.kind, payload)
        plan = try r.string("plan")
        goal = try r.string("goal")
        inputs = try r.present("inputs")
        idempotencyKey = try r.optionalString("idempotency_key")
        submitterUID = try r.optionalInt("submitter_uid")
        workspace = try r.optionalString("workspace")
        retryOf = try r.optionalString("retry_of")
        fromStep = try r.optionalInt("from_step")
        format = try r.optionalInt(RecordFormat.member)
        planSHA256 = try r.optionalString(JobCommitment.planMember)
        jobSHA256 = try r.optionalString(JobCommitment.jobMember)
    }

    /// The payload as it is stored.
    public var json: JSON {
        var members: [(String, JSON)] = [("plan", .string(plan)), ("goal", .string(goal)), ("inputs", inputs)]
        if let idempotencyKey { members.append(("idempotency_key", .string(idempotencyKey))) }
        if let submitterUID { members.append(("submitter_uid", .int(submitterUID))) }
        if let workspace { members.append(("workspace", .string(workspace))) }
        if let retryOf { members.append(("retry_of", .string(retryOf))) }
        if let fromStep { members.append(("from_step", .int(fromStep))) }
        if let format { members.append((RecordFormat.member, .int(format))) }
        if let planSHA256 { members.append((JobCommitment.planMember, .string(planSHA256))) }
        if let jobSHA256 { members.append((JobCommitment.jobMember, .string(jobSHA256))) }
        return .object(members)
    }
}
