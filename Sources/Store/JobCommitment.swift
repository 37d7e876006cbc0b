import Crypto

/// What a job's hash chain commits to besides its events: the job's stored row — the plan snapshot
/// that recovery and replay run from, the goal, the inputs and the working directory.
///
/// The store writer adds two members to the `job.submitted` event it writes with a new job (seq 1,
/// in the same transaction as the row), so the chain covers them:
/// - `plan_sha256`: the SHA-256 of the stored `jobs.plan` text;
/// - `job_sha256`: the SHA-256 of the stored texts of `jobs.plan`, `goal`, `inputs` and `cwd`, each
///   followed by the byte 0x1E (a NULL `cwd` as no bytes).
///
/// `audit verify` and `scripts/verify_chain.py` recompute both from the row, so an edit of the row —
/// which someone holding the database file can make after dropping the append-only triggers — is
/// named, the plan apart from the rest. A job recorded before these members existed has neither and
/// is verified by its events alone. Pure; safe from any thread.
public enum JobCommitment {
    public static let planMember = "plan_sha256"
    public static let jobMember = "job_sha256"

    /// The two digests, as lowercase hex, of a row's stored texts.
    public static func digests(plan: String, goal: String, inputs: String, cwd: String?) -> (plan: String, job: String) {
        var job = SHA256()
        for text in [plan, goal, inputs, cwd ?? ""] {
            job.update(data: Array(text.utf8))
            job.update(data: [0x1E])
        }
        return (ChainHash(SHA256.hash(data: Array(plan.utf8))).hex, ChainHash(job.finalize()).hex)
    }

    /// `payload` (a `job.submitted` payload object) with both digests appended, unless it carries
    /// them already (a recorded event written again, as a copy of a job is).
    static func committing(_ payload: JSON, to digests: (plan: String, job: String)) -> JSON {
        guard case let .object(members) = payload, payload[planMember] == nil, payload[RecordFormat.member] == nil else { return payload }
        return .object(
            members + [
                (RecordFormat.member, .int(RecordFormat.current)), (planMember, .string(digests.plan)), (jobMember, .string(digests.job)),
            ])
    }

    /// What is wrong with a job's row, given its `job.submitted` payload; nil when the row matches or
    /// the payload predates the digests. A payload without `JobSubmitted`'s shape is a problem too.
    static func problem(submitted payload: JSON, plan: String, goal: String, inputs: String, cwd: String?) -> String? {
        let submitted: JobSubmitted
        do {
            submitted = try JobSubmitted(payload: payload)
        } catch {
            return "\(error)"
        }
        let format = RecordFormat.of(payload)
        guard format <= RecordFormat.current else {
            return "the job was written in record format \(format), newer than this agentd reads (up to \(RecordFormat.current))"
        }
        guard let committedPlan = submitted.planSHA256, let committedJob = submitted.jobSHA256 else {
            // Format 1 predates the digests; from format 2 on they are required.
            return format >= 2 ? "the job's first event lacks the digests of its row that record format \(format) requires" : nil
        }
        let actual = digests(plan: plan, goal: goal, inputs: inputs, cwd: cwd)
        if actual.plan != committedPlan {
            return "the job's stored plan snapshot (jobs.plan, which recovery and replay run) differs from the plan its chain committed to"
        }
        if actual.job != committedJob {
            return "the job's stored goal, inputs or working directory (jobs) differ from what its chain committed to"
        }
        return nil
    }
}
