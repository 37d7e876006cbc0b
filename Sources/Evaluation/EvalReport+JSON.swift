import Store

extension EvalReport {
    /// The report as one JSON object: the suite, every arm's figures, the pairs and every judged run.
    public var json: JSON {
        func optional(_ value: Double?) -> JSON { value.map(JSON.number) ?? .null }
        func critic(_ c: CriticFigures) -> JSON {
            .object([
                ("wrong_judged", .int(c.wrongJudged)), ("false_passes", .int(c.falsePasses)),
                ("false_pass_rate", optional(c.falsePassRate)),
                ("right_judged", .int(c.rightJudged)), ("false_fails", .int(c.falseFails)), ("false_fail_rate", optional(c.falseFailRate)),
            ])
        }
        let armObjects: [JSON] = arms.map { a in
            .object([
                ("name", .string(a.name)), ("runs", .int(a.runs)), ("verified", .int(a.verified)),
                ("success_rate", optional(a.successRate)),
                ("ci95", .object([("lower", .number(a.interval.lower)), ("upper", .number(a.interval.upper))])),
                ("first_attempt", .int(a.firstAttempt)), ("first_attempt_rate", optional(a.firstAttemptRate)),
                ("failed_jobs", .int(a.failedJobs)), ("actor_calls", .int(a.actorCalls)), ("calls", .int(a.calls)),
                ("input_tokens", .int(a.inputTokens)), ("output_tokens", .int(a.outputTokens)), ("cost_usd", optional(a.costUSD)),
                ("actor_calls_per_task", optional(a.actorCallsPerRun)), ("calls_per_task", optional(a.callsPerRun)),
                ("tokens_per_task", optional(a.tokensPerRun)), ("cost_per_task", optional(a.costPerRun)),
                ("critic", critic(a.critic)), ("critic_by_attempt", .array(a.criticByAttempt.map(critic))),
                ("flips", .int(a.flips)), ("flip_rate", optional(a.flipRate)),
            ])
        }
        let pairObjects: [JSON] = pairs.map { p in
            .object([
                ("first", .string(p.first)), ("second", .string(p.second)), ("pairs", .int(p.pairs)), ("both", .int(p.both)),
                ("wins", .int(p.wins)), ("losses", .int(p.losses)), ("p", .number(p.p)),
            ])
        }
        return .object([
            ("suite", .string(suite)), ("tasks", .int(tasks)), ("reps", .int(reps)), ("arms", .array(armObjects)),
            ("pairs", .array(pairObjects)), ("runs", .array(results.map(\.json))),
        ])
    }
}
