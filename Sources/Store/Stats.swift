/// Critic analytics over the event log (`agentd stats`): per plan and role, calls, tokens and latency;
/// per plan, how often the critic sent work back, how often that feedback fixed it, re-plans, and why
/// things failed.
///
/// Definitions (every figure is over the jobs the filter selects, by `jobs.created_at`):
///
/// - A **step** is one step index within one plan of a job: the runner's steps before the first
///   re-plan, then each re-plan's steps (a re-plan reuses indices, so `(job, re-plans so far, step)`
///   identifies it). Only steps the actor was called for count.
/// - An **attempt** is one `(step, attempt)` the actor was called for. **Reruns** = attempts − steps;
///   the **rerun rate** is reruns / steps.
/// - A **failed attempt** is one the critic judged `fail` (a `call.completed` whose `verdict.verdict`
///   is `fail`), or an `attempt.duplicate` (the same output as a rejected one, failed with its
///   feedback). A **corrected step** had a failed attempt and a later attempt the critic passed. The
///   **correction-success rate** is corrected steps / steps with a failed attempt.
/// - An **overcorrected job**: the verifier's last decision rejected the job (`verified` false) although
///   the critic had passed a step whose output had been changed in response to criticism — a corrected
///   step (rerun with feedback, then passed) or a step a re-plan put in place of an exhausted one, then
///   passed. (The runner never replaces an output the critic passed: re-plans replace only the failed
///   step onwards, so a passed output is never "later changed"; this counts the cases where the
///   critic's accepted correction did not satisfy the verifier.)
/// - **Gates**: `gate.requested` events (tool calls a plan's gates held for review); of their
///   `gate.decided`, those **approved**, **blocked** (rejected by the critic), **rejected** (by a
///   person), **timed out** (by `timeout`), **edited** (approved with a person's arguments), and the
///   mean wait of the decisions a person made.
/// - **Ground truth** (plans with a `check`), flips, juror agreement and passes overturned by the
///   verifier: see `CriticStats.JudgeRow` (Stats+GroundTruth.swift). The check's own calls are
///   critic-role calls but not the critic's: they count as the role `check`, never as a verdict.
/// - **Failures by kind**: `call.failed` by role and `error`, invalid replies (`call.completed` with
///   `invalid`) by role, and the reasons of failed and cancelled jobs grouped by their leading phrase
///   (`leadingPhrase`).
public struct CriticStats: Sendable, Equatable {
    public struct Filter: Sendable, Equatable {
        public var plan: String?
        /// Jobs created at or after this Unix time (ms).
        public var sinceMillis: Int64?

        public init(plan: String? = nil, sinceMillis: Int64? = nil) {
            self.plan = plan
            self.sinceMillis = sinceMillis
        }
    }

    public struct RoleRow: Sendable, Equatable {
        public var plan: String
        public var role: String
        /// Completed calls.
        public var calls: Int
        public var failedCalls: Int
        public var inputTokens: Int
        public var outputTokens: Int
        /// Mean `duration_ms` of the completed calls.
        public var meanLatencyMS: Double?
        public var costUSD: Double?
    }

    public struct PlanRow: Sendable, Equatable {
        public var plan: String
        public var jobs = 0
        public var succeeded = 0
        public var failed = 0
        public var cancelled = 0
        public var steps = 0
        public var attempts = 0
        public var stepsWithFailedAttempt = 0
        public var correctedSteps = 0
        public var replans = 0
        public var verifierRejections = 0
        public var overcorrections = 0
        public var gates = 0
        public var gatesApproved = 0
        public var gatesBlocked = 0
        public var gatesRejected = 0
        public var gatesTimedOut = 0
        public var gatesEdited = 0
        /// Mean wait for a person's decision.
        public var meanDecisionMS: Double?

        public var reruns: Int { attempts - steps }
        public var rerunRate: Double? { steps > 0 ? Double(reruns) / Double(steps) : nil }
        public var correctionSuccessRate: Double? {
            stepsWithFailedAttempt > 0 ? Double(correctedSteps) / Double(stepsWithFailedAttempt) : nil
        }
    }

    public struct FailureRow: Sendable, Equatable {
        /// `call_failed`, `invalid_reply` or `job_reason`.
        public var plan: String
        public var kind: String
        /// `role: error` for a failed call, the role for an invalid reply, the leading phrase for a reason.
        public var detail: String
        public var count: Int
    }

    public var filter: Filter
    public var plans: [PlanRow] = []
    public var roles: [RoleRow] = []
    public var failures: [FailureRow] = []
    public var judges: [JudgeRow] = []
    public var agreements: [AgreementRow] = []

    /// A job reason's leading phrase: parenthesised parts removed, cut at the first `:` or `;`, numbers
    /// replaced by `N`. "step 2 (write it: now) failed 3 attempts and …; last feedback: …" →
    /// "step N failed N attempts and re-plan budget of N used".
    public static func leadingPhrase(_ reason: String) -> String {
        var out = ""
        var depth = 0
        var lastWasDigit = false
        for ch in reason {
            if ch == "(" {
                depth += 1
                continue
            }
            if ch == ")" {
                depth = max(0, depth - 1)
                continue
            }
            if depth > 0 { continue }
            if ch == ":" || ch == ";" || ch == "\n" { break }
            if ch.isNumber {
                if !lastWasDigit { out.append("N") }
                lastWasDigit = true
                continue
            }
            lastWasDigit = false
            out.append(ch)
        }
        return out.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    }
}

extension Database {
    /// The jobs the filter selects and their events (without a retry's copies, see `RetryPrefix`),
    /// each event with `epoch`: how many re-plans its job
    /// had recorded up to it (a `job.replanned` counts itself).
    static let statsEvents = """
        WITH sel AS (
            SELECT id, plan_name, status, reason FROM jobs
            WHERE (?1 IS NULL OR plan_name = ?1) AND (?2 IS NULL OR created_at >= ?2)
        ),
        ev AS (
            SELECT sel.plan_name AS plan, e.job_id, e.seq, e.kind, e.role, e.step, e.attempt, e.call_id, e.payload,
                   sum(e.kind = 'job.replanned') OVER (PARTITION BY e.job_id ORDER BY e.seq) AS epoch
            FROM events e JOIN sel ON sel.id = e.job_id
            -- A retry's copies of its original's events: counted once, in the job that made them.
            WHERE json_extract(e.payload, '$.reused_from') IS NULL
        ),
        -- The ground-truth check's calls (a step.checked carries its call's id): critic-role calls that
        -- are not the critic's.
        checks AS (
            SELECT e.job_id, e.call_id FROM events e JOIN sel ON sel.id = e.job_id WHERE e.kind = 'step.checked'
        ),
        attempts AS (
            SELECT plan, job_id, epoch, step, attempt,
                   max(kind = 'call.completed' AND role = 'critic'
                       AND json_extract(payload, '$.verdict.verdict') = 'pass') AS passed,
                   max((kind = 'call.completed' AND role = 'critic'
                        AND json_extract(payload, '$.verdict.verdict') = 'fail')
                       OR kind = 'attempt.duplicate') AS failed
            FROM ev
            WHERE step IS NOT NULL AND attempt IS NOT NULL AND role IN ('actor', 'critic')
              AND NOT (role = 'critic' AND EXISTS (SELECT 1 FROM checks c WHERE c.job_id = ev.job_id AND c.call_id = ev.call_id))
            GROUP BY plan, job_id, epoch, step, attempt
            HAVING sum(role = 'actor' AND kind = 'call.started') > 0
        ),
        steps AS (
            SELECT plan, job_id, epoch, step, count(*) AS attempts,
                   max(failed) AS had_failure,
                   max(CASE WHEN passed THEN attempt END) AS pass_attempt,
                   min(CASE WHEN failed THEN attempt END) AS first_fail
            FROM attempts GROUP BY plan, job_id, epoch, step
        ),
        decisions AS (
            SELECT job_id, json_extract(payload, '$.verified') AS verified,
                   row_number() OVER (PARTITION BY job_id ORDER BY seq DESC) AS latest
            FROM ev
            WHERE kind = 'call.completed' AND role = 'verifier' AND json_extract(payload, '$.verified') IS NOT NULL
        )
        """

    /// `agentd stats`: see `CriticStats` for the definitions.
    public func criticStats(_ filter: CriticStats.Filter) throws(StoreError) -> CriticStats {
        let bindings: [SQLValue] = [filter.plan.map(SQLValue.text) ?? .null, filter.sinceMillis.map(SQLValue.int) ?? .null]
        var stats = CriticStats(filter: filter)
        var plans: [String: CriticStats.PlanRow] = [:]
        func plan(_ name: String) -> CriticStats.PlanRow { plans[name] ?? CriticStats.PlanRow(plan: name) }

        for row in try query(
            Self.statsEvents + """
                SELECT plan_name, count(*), sum(status = 'succeeded'), sum(status = 'failed'), sum(status = 'cancelled')
                FROM sel GROUP BY plan_name
                """, bindings)
        {
            var p = plan(row[0].text ?? "?")
            p.jobs = Int(row[1].int ?? 0)
            p.succeeded = Int(row[2].int ?? 0)
            p.failed = Int(row[3].int ?? 0)
            p.cancelled = Int(row[4].int ?? 0)
            plans[p.plan] = p
        }

        for row in try query(
            Self.statsEvents + """
                SELECT plan, count(*), sum(attempts), sum(had_failure),
                       sum(had_failure AND pass_attempt > first_fail)
                FROM steps GROUP BY plan
                """, bindings)
        {
            var p = plan(row[0].text ?? "?")
            p.steps = Int(row[1].int ?? 0)
            p.attempts = Int(row[2].int ?? 0)
            p.stepsWithFailedAttempt = Int(row[3].int ?? 0)
            p.correctedSteps = Int(row[4].int ?? 0)
            plans[p.plan] = p
        }

        for row in try query(
            Self.statsEvents + """
                SELECT plan, count(*) FROM ev WHERE kind = 'job.replanned' GROUP BY plan
                """, bindings)
        {
            var p = plan(row[0].text ?? "?")
            p.replans = Int(row[1].int ?? 0)
            plans[p.plan] = p
        }

        for row in try query(
            Self.statsEvents + """
                SELECT sel.plan_name, count(*),
                       sum(EXISTS (
                           SELECT 1 FROM steps s
                           WHERE s.job_id = d.job_id AND s.pass_attempt IS NOT NULL
                             AND ((s.had_failure AND s.pass_attempt > s.first_fail) OR s.epoch > 0)))
                FROM decisions d JOIN sel ON sel.id = d.job_id
                WHERE d.latest = 1 AND d.verified = 0
                GROUP BY sel.plan_name
                """, bindings)
        {
            var p = plan(row[0].text ?? "?")
            p.verifierRejections = Int(row[1].int ?? 0)
            p.overcorrections = Int(row[2].int ?? 0)
            plans[p.plan] = p
        }
        for row in try query(
            Self.statsEvents + """
                SELECT plan, sum(kind = 'gate.requested'),
                       sum(kind = 'gate.decided' AND json_extract(payload, '$.decision') = 'approved'),
                       sum(kind = 'gate.decided' AND json_extract(payload, '$.decision') = 'rejected'
                           AND json_extract(payload, '$.by') = 'critic'),
                       sum(kind = 'gate.decided' AND json_extract(payload, '$.decision') = 'rejected'
                           AND json_extract(payload, '$.by') = 'person'),
                       sum(kind = 'gate.decided' AND json_extract(payload, '$.by') = 'timeout'),
                       sum(kind = 'gate.decided' AND json_extract(payload, '$.edited_arguments') IS NOT NULL),
                       avg(CASE WHEN kind = 'gate.decided' AND json_extract(payload, '$.by') = 'person'
                           THEN json_extract(payload, '$.waited_ms') END)
                FROM ev WHERE kind IN ('gate.requested', 'gate.decided') GROUP BY plan
                """, bindings)
        {
            var p = plan(row[0].text ?? "?")
            p.gates = Int(row[1].int ?? 0)
            p.gatesApproved = Int(row[2].int ?? 0)
            p.gatesBlocked = Int(row[3].int ?? 0)
            p.gatesRejected = Int(row[4].int ?? 0)
            p.gatesTimedOut = Int(row[5].int ?? 0)
            p.gatesEdited = Int(row[6].int ?? 0)
            p.meanDecisionMS = row[7].double
            plans[p.plan] = p
        }
        stats.plans = plans.values.sorted { $0.plan < $1.plan }

        for row in try query(
            Self.statsEvents + """
                SELECT plan,
                       CASE WHEN role = 'critic'
                            AND EXISTS (SELECT 1 FROM checks c WHERE c.job_id = ev.job_id AND c.call_id = ev.call_id)
                       THEN 'check' ELSE role END AS who,
                       sum(kind = 'call.completed'), sum(kind = 'call.failed'),
                       coalesce(sum(json_extract(payload, '$.usage.input_tokens')), 0),
                       coalesce(sum(json_extract(payload, '$.usage.output_tokens')), 0),
                       avg(CASE WHEN kind = 'call.completed' THEN json_extract(payload, '$.duration_ms') END),
                       sum(json_extract(payload, '$.cost_usd'))
                FROM ev WHERE kind IN ('call.completed', 'call.failed')
                GROUP BY plan, who
                ORDER BY plan, CASE who WHEN 'planner' THEN 0 WHEN 'actor' THEN 1 WHEN 'critic' THEN 2 WHEN 'check' THEN 3 ELSE 4 END
                """, bindings)
        {
            stats.roles.append(
                CriticStats.RoleRow(
                    plan: row[0].text ?? "?", role: row[1].text ?? "?", calls: Int(row[2].int ?? 0), failedCalls: Int(row[3].int ?? 0),
                    inputTokens: Int(row[4].int ?? 0), outputTokens: Int(row[5].int ?? 0), meanLatencyMS: row[6].double,
                    costUSD: row[7].double))
        }

        for row in try query(
            Self.statsEvents + """
                SELECT plan, 'call_failed', role || ': ' || coalesce(json_extract(payload, '$.error'), '?'), count(*)
                FROM ev WHERE kind = 'call.failed' GROUP BY 1, 2, 3
                UNION ALL
                SELECT plan, 'invalid_reply', role, count(*)
                FROM ev WHERE kind = 'call.completed' AND json_extract(payload, '$.invalid') IS NOT NULL GROUP BY 1, 2, 3
                ORDER BY 1, 2, 3
                """, bindings)
        {
            stats.failures.append(
                CriticStats.FailureRow(
                    plan: row[0].text ?? "?", kind: row[1].text ?? "?", detail: row[2].text ?? "?", count: Int(row[3].int ?? 0)))
        }
        var reasons: [String: [String: Int]] = [:]
        for row in try query(
            Self.statsEvents + """
                SELECT plan_name, coalesce(reason, status) FROM sel WHERE status IN ('failed', 'cancelled')
                """, bindings)
        {
            reasons[row[0].text ?? "?", default: [:]][CriticStats.leadingPhrase(row[1].text ?? ""), default: 0] += 1
        }
        for (planName, phrases) in reasons.sorted(by: { $0.key < $1.key }) {
            for (phrase, count) in phrases.sorted(by: { ($0.value, $1.key) > ($1.value, $0.key) }) {
                stats.failures.append(CriticStats.FailureRow(plan: planName, kind: "job_reason", detail: phrase, count: count))
            }
        }
        (stats.judges, stats.agreements) = try groundTruthStats(bindings)
        let order = ["call_failed": 0, "invalid_reply": 1, "job_reason": 2]
        stats.failures = stats.failures.enumerated().sorted {
            ($0.element.plan, order[$0.element.kind] ?? 3, $0.offset) < ($1.element.plan, order[$1.element.kind] ?? 3, $1.offset)
        }.map(\.element)
        return stats
    }
}

extension CriticStats {
    /// The `--json` form: one object.
    public var json: JSON {
        func number(_ d: Double?) -> JSON { d.map { .number(($0 * 10000).rounded() / 10000) } ?? .null }
        return .object([
            (
                "filter",
                .object([
                    ("plan", filter.plan.map(JSON.string) ?? .null), ("since_ms", filter.sinceMillis.map { .int(Int($0)) } ?? .null),
                ])
            ),
            (
                "plans",
                .array(
                    plans.map { p in
                        .object([
                            ("plan", .string(p.plan)), ("jobs", .int(p.jobs)), ("succeeded", .int(p.succeeded)), ("failed", .int(p.failed)),
                            ("cancelled", .int(p.cancelled)), ("steps", .int(p.steps)), ("attempts", .int(p.attempts)),
                            ("reruns", .int(p.reruns)), ("rerun_rate", number(p.rerunRate)),
                            ("steps_with_failed_attempt", .int(p.stepsWithFailedAttempt)), ("corrected_steps", .int(p.correctedSteps)),
                            ("correction_success_rate", number(p.correctionSuccessRate)), ("replans", .int(p.replans)),
                            ("verifier_rejections", .int(p.verifierRejections)), ("overcorrections", .int(p.overcorrections)),
                            (
                                "gates",
                                .object([
                                    ("requested", .int(p.gates)), ("approved", .int(p.gatesApproved)), ("blocked", .int(p.gatesBlocked)),
                                    ("rejected", .int(p.gatesRejected)), ("timed_out", .int(p.gatesTimedOut)),
                                    ("edited", .int(p.gatesEdited)), ("mean_decision_ms", number(p.meanDecisionMS)),
                                ])
                            ),
                            (
                                "roles",
                                .array(
                                    roles.filter { $0.plan == p.plan }.map { r in
                                        .object([
                                            ("role", .string(r.role)), ("calls", .int(r.calls)), ("failed_calls", .int(r.failedCalls)),
                                            ("input_tokens", .int(r.inputTokens)), ("output_tokens", .int(r.outputTokens)),
                                            ("mean_latency_ms", number(r.meanLatencyMS)), ("cost_usd", number(r.costUSD)),
                                        ])
                                    })
                            ),
                            ("judges", judgesJSON(p.plan)), ("juror_agreement", agreementJSON(p.plan)),
                            (
                                "failures",
                                .array(
                                    failures.filter { $0.plan == p.plan }.map { f in
                                        .object([("kind", .string(f.kind)), ("detail", .string(f.detail)), ("count", .int(f.count))])
                                    })
                            ),
                        ])
                    })
            ),
        ])
    }
}

extension CriticStats {
    static func number(_ d: Double?) -> JSON { d.map { .number(($0 * 10000).rounded() / 10000) } ?? .null }

    /// A plan's `judges` in the `json` form.
    func judgesJSON(_ plan: String) -> JSON {
        .array(
            judges.filter { $0.plan == plan }.map { j in
                let members: [(String, JSON)] = [
                    ("judge", .string(j.judge)), ("juror", j.juror.map(JSON.string) ?? .null), ("judged", .int(j.judged)),
                    ("false_passes", .int(j.falsePasses)), ("false_fails", .int(j.falseFails)),
                    ("check_agreement", Self.number(j.checkAgreement)), ("flips", .int(j.flips)), ("flip_rate", Self.number(j.flipRate)),
                    ("passed_jobs", .int(j.passedJobs)), ("passes_overturned", .int(j.passesOverturned)),
                    ("overturned_rate", Self.number(j.overturnedRate)),
                ]
                return .object(members)
            })
    }

    /// A plan's `juror_agreement` in the `json` form.
    func agreementJSON(_ plan: String) -> JSON {
        .array(
            agreements.filter { $0.plan == plan }.map { a in
                let members: [(String, JSON)] = [
                    ("jurors", .array(a.jurors.map(JSON.string))), ("outputs", .int(a.outputs)), ("agreed", .int(a.agreed)),
                    ("rate", Self.number(a.rate)),
                ]
                return .object(members)
            })
    }
}

extension CriticStats {
    /// Decodes the `json` form (what `stats.get` returns), nil when its shape is not that. Rates are
    /// recomputed from the counts; latency and cost are read as rounded in `json`.
    public init?(json: JSON) {
        guard let filter = json["filter"], case let .array(plans)? = json["plans"] else { return nil }
        self.init(
            filter: Filter(plan: filter["plan"]?.stringValue, sinceMillis: filter["since_ms"]?.intValue.map(Int64.init)))
        for p in plans {
            guard let name = p["plan"]?.stringValue else { return nil }
            func int(_ key: String) -> Int { p[key]?.intValue ?? 0 }
            var row = PlanRow(plan: name)
            (row.jobs, row.succeeded, row.failed, row.cancelled) = (int("jobs"), int("succeeded"), int("failed"), int("cancelled"))
            (row.steps, row.attempts) = (int("steps"), int("attempts"))
            (row.stepsWithFailedAttempt, row.correctedSteps) = (int("steps_with_failed_attempt"), int("corrected_steps"))
            (row.replans, row.verifierRejections, row.overcorrections) = (
                int("replans"), int("verifier_rejections"), int("overcorrections")
            )
            self.plans.append(row)
            for r in p["roles"]?.arrayValue ?? [] {
                guard let role = r["role"]?.stringValue else { return nil }
                roles.append(
                    RoleRow(
                        plan: name, role: role, calls: r["calls"]?.intValue ?? 0, failedCalls: r["failed_calls"]?.intValue ?? 0,
                        inputTokens: r["input_tokens"]?.intValue ?? 0, outputTokens: r["output_tokens"]?.intValue ?? 0,
                        meanLatencyMS: r["mean_latency_ms"]?.doubleValue, costUSD: r["cost_usd"]?.doubleValue))
            }
            for j in p["judges"]?.arrayValue ?? [] {
                guard let judge = j["judge"]?.stringValue else { return nil }
                var row = JudgeRow(plan: name, judge: judge, juror: j["juror"]?.stringValue)
                func count(_ key: String) -> Int { j[key]?.intValue ?? 0 }
                (row.judged, row.falsePasses, row.falseFails, row.flips) = (
                    count("judged"), count("false_passes"), count("false_fails"), count("flips")
                )
                (row.passedJobs, row.passesOverturned) = (count("passed_jobs"), count("passes_overturned"))
                judges.append(row)
            }
            for a in p["juror_agreement"]?.arrayValue ?? [] {
                guard let jurors = a["jurors"]?.arrayValue?.compactMap(\.stringValue) else { return nil }
                agreements.append(
                    AgreementRow(plan: name, jurors: jurors, outputs: a["outputs"]?.intValue ?? 0, agreed: a["agreed"]?.intValue ?? 0))
            }
            for f in p["failures"]?.arrayValue ?? [] {
                guard let kind = f["kind"]?.stringValue, let detail = f["detail"]?.stringValue else { return nil }
                failures.append(FailureRow(plan: name, kind: kind, detail: detail, count: f["count"]?.intValue ?? 0))
            }
        }
    }
}
