import Store

/// The formats of `agentd transcript`.
public enum TranscriptFormat: String, Sendable, CaseIterable {
    case text, md, jsonl, html
}

extension TranscriptModel {
    /// The transcript in `format`. `jsonl` is the events themselves, one per line.
    public static func render(job: JSON, events: [JSON], format: TranscriptFormat) -> String {
        switch format {
        case .jsonl:
            var out = ""
            for e in events {
                out += e.encoded
                out += "\n"
            }
            return out
        case .text: return TextRenderer.render(TranscriptModel(job: job, events: events), style: .text)
        case .md: return TextRenderer.render(TranscriptModel(job: job, events: events), style: .markdown)
        case .html: return HTMLRenderer.render(TranscriptModel(job: job, events: events))
        }
    }
}

/// A made-up job with the shape of a real one (a plan, steps with reruns, tool calls, a re-plan, a
/// verifier), for the benchmark and tests. Its text is hostile on purpose: markup, quotes, ampersands.
public enum SyntheticJob {
    /// About `events` events (never fewer).
    public static func make(events target: Int) -> (job: JSON, events: [JSON]) {
        let id = "01SYNTHETIC0000000"
        var events: [JSON] = []
        var at = 1_700_000_000_000
        var call = 0
        func add(_ event: some RecordedEvent, role: String? = nil, step: Int? = nil, attempt: Int? = nil, callID: String? = nil) {
            at += 3
            let record = EventRecord(
                jobID: id, seq: events.count + 1, at: Int64(at), kind: type(of: event).kind.rawValue, role: role, step: step,
                attempt: attempt, callID: callID, payload: event.json)
            events.append(record.json)
        }
        func request(_ role: String, _ text: String) -> JSON {
            .object([
                ("model", "gpt-test"), ("role", .string(role)),
                (
                    "messages",
                    .array([
                        .object([("role", "system"), ("content", .string("You are the \(role). Answer with JSON <strictly>."))]),
                        .object([("role", "user"), ("content", .string(text))]),
                    ])
                ), ("temperature", 0.2),
            ])
        }
        let usage = { (i: Int, o: Int) in CallCompleted.Usage(inputTokens: i, outputTokens: o) }
        func modelCall(_ role: String, step: Int?, attempt: Int?, prompt: String, _ completed: CallCompleted) {
            call += 1
            let c = "c\(call)"
            add(
                CallStarted(agent: "\(role)/\(id)", reask: 0, request: request(role, prompt)), role: role, step: step, attempt: attempt,
                callID: c)
            var completed = completed
            (completed.usage, completed.durationMs, completed.costUSD) = (usage(420, 80), 812.5, 0.0012)
            add(completed, role: role, step: step, attempt: attempt, callID: c)
        }
        add(JobSubmitted(plan: "synthetic", goal: "render <b>everything</b> & \"quote\" it", inputs: .object([])))
        add(JobState(from: .queued, to: .running))
        let steps = (0..<200).map { "step \($0): do part \($0) of <the> task & more" }
        modelCall(
            "planner", step: nil, attempt: nil, prompt: "Split the goal into steps.",
            CallCompleted(reply: "{\"steps\":[…]}", durationMs: 0, outcome: .steps(steps)))
        var step = 0
        var replanned = false
        while events.count < target - 4 {
            for attempt in 0..<2 {
                let output = "output of step \(step), attempt \(attempt): <script>alert('x')</script> & done"
                call += 1
                let c = "c\(call)"
                add(
                    CallStarted(agent: "actor/\(id)", reask: 0, request: request("actor", steps[step % steps.count])), role: "actor",
                    step: step, attempt: attempt, callID: c)
                let toolCall: JSON = .object([
                    ("id", "t1"), ("type", "function"),
                    ("function", .object([("name", "run_command"), ("arguments", "{\"argv\":[\"ls\",\"-l\"]}")])),
                ])
                add(
                    CallCompleted(reply: "", toolCalls: [toolCall], usage: usage(300, 20), durationMs: 400), role: "actor", step: step,
                    attempt: attempt, callID: c)
                add(
                    ToolStarted(tool: "run_command", toolCallID: "t1", idempotencyKey: nil, argv: ["ls", "-l"]), role: "actor", step: step,
                    attempt: attempt, callID: "\(c).0")
                let result =
                    "{\"exit_status\":0,\"signal\":0,\"timed_out\":false,\"stdout\":\"total 0\\n-rw-r--r-- a <b>.txt\\n\",\"stdout_truncated\":false,\"stderr\":\"\",\"stderr_truncated\":false}"
                add(
                    ToolCompleted(tool: "run_command", toolCallID: "t1", ok: true, result: .string(result), durationMs: 4.5), role: "actor",
                    step: step, attempt: attempt, callID: "\(c).0")
                modelCall(
                    "actor", step: step, attempt: attempt, prompt: steps[step % steps.count],
                    CallCompleted(reply: JSON.object([("output", .string(output))]).encoded, durationMs: 0))
                let pass = attempt == 1 || step % 3 != 0
                let verdict: JSON = .object([
                    ("verdict", pass ? "pass" : "fail"), ("score", pass ? 0.9 : 0.3),
                    ("feedback", .string(pass ? "ok" : "missing <detail> & \"specifics\"")),
                    ("suggestion", pass ? .null : "name the files"),
                ])
                modelCall(
                    "critic", step: step, attempt: attempt, prompt: output,
                    CallCompleted(reply: verdict.encoded, durationMs: 0, outcome: .verdict(verdict)))
                if pass { break }
            }
            step += 1
            if !replanned && step == 5 {
                replanned = true
                add(StepExhausted(attempts: 2, lastFeedback: "nope"), step: step)
                modelCall(
                    "planner", step: nil, attempt: nil, prompt: "Re-plan.",
                    CallCompleted(reply: "{}", durationMs: 0, outcome: .steps(steps)))
                add(JobReplanned(replan: 1, fromStep: step, steps: steps), role: "planner", step: step)
            }
        }
        modelCall(
            "verifier", step: nil, attempt: nil, prompt: "Decide.",
            CallCompleted(reply: "{\"verified\":true}", durationMs: 0, outcome: .verification(verified: true, reason: "all <good>")))
        add(JobState(from: .running, to: .succeeded, reason: "all <good>"))
        let job: JSON = .object([
            ("id", .string(id)), ("plan", "synthetic"), ("goal", "render <b>everything</b> & \"quote\" it"), ("status", "succeeded"),
            ("reason", "all <good>"), ("inputs", .object([])), ("idempotency_key", .null), ("created_at", .int(1_700_000_000_000)),
            ("started_at", .int(1_700_000_000_003)), ("finished_at", .int(at)),
        ])
        return (job, events)
    }
}
