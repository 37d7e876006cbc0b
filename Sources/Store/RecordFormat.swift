/// The record format a job was written with, and the rule for changing it (ARCHITECTURE.md, "The
/// record-format rule").
///
/// - Format 1: jobs recorded before formats were numbered. Their `job.submitted` has no `format`
///   member, and their chain covers their events only.
/// - Format 2: `job.submitted` carries `format: 2` and the digests of the job's stored row
///   (`JobCommitment`), which `audit verify` and `scripts/verify_chain.py` then require.
/// - Format 3: the agents' replies are read under `ReplyRules.strict` (a self-contradicting
///   verdict or a placeholder is invalid and asked again, prompts describe each reply field instead
///   of showing an example) and a verdict's `feasibility` can end a step early (`step.infeasible`).
///   The stored shapes are those of format 2; what changed is what a recorded request says and how
///   a recorded reply is read, which recovery and replay must reproduce.
/// - Format 4: every candidate an attempt asks of the actor is recorded (`candidate.started`,
///   `candidate.judged`, `candidate.chosen`, `Events/CandidateEvents.swift`), one per attempt
///   unless `policy.samples` asks for more, each naming its parent so a step's candidates form a tree.
///   With more than one sample the candidates' calls run concurrently (call ids `cN-(k+1)-M`), a
///   request carries its `sample`, and with tools each candidate works in its own copy of the
///   workspace. Jobs of formats 1–3 run, recover and replay exactly as before, without these events.
///
/// The store writer stamps every new job with `current` (in the same transaction as its row); a
/// job is verified and replayed under the format it names. A change to what is stored raises
/// `current`, comes with a forward migration when the schema changes, and with a new database in
/// Tests/Fixtures/records written by the release that introduces it. Pure.
public enum RecordFormat {
    /// The format this build writes.
    public static let current = 4
    /// The `job.submitted` member that names a job's format.
    public static let member = "format"

    /// The format a recorded `job.submitted` payload names (1 when it names none).
    public static func of(_ submitted: JSON) -> Int { submitted[member]?.intValue ?? 1 }
}
