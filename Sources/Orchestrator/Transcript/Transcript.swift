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
        func add(_ kind: String, role: String? = nil, step: Int? = nil, attempt: Int? = nil, callID: String? = nil, _ payload: JSON) {
            at += 3
            var fields: [(String, JSON)] = [
                ("job", .string(id)), ("seq", .int(events.count + 1)), ("at", .int(at)), ("kind", .string(kind)),
                ("role", role.map(JSON.string) ?? .null), ("step", step.map(JSON.int) ?? .null),
                ("attempt", attempt.map(JSON.int) ?? .null),
            ]
            if let callID { fields.append(("call", .string(callID))) }
            fields.append(("payload", payload))
            events.append(.object(fields))
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
        func usage(_ i: Int, _ o: Int) -> JSON { .object([("input_tokens", .int(i)), ("output_tokens", .int(o))]) }
        func modelCall(_ role: String, step: Int?, attempt: Int?, prompt: String, _ completed: [(String, JSON)]) {
            call += 1
            let c = "c\(call)"
            add(
                EventKind.callStarted.rawValue, role: role, step: step, attempt: attempt, callID: c,
                .object([("agent", .string("\(role)/\(id)")), ("reask", 0), ("request", request(role, prompt))]))
            add(
                EventKind.callCompleted.rawValue, role: role, step: step, attempt: attempt, callID: c,
                .object(completed + [("usage", usage(420, 80)), ("duration_ms", 812.5), ("cost_usd", 0.0012)]))
        }
        add(
            EventKind.jobSubmitted.rawValue,
            .object([("plan", "synthetic"), ("goal", "render <b>everything</b> & \"quote\" it"), ("inputs", .object([]))]))
        add(EventKind.jobState.rawValue, .object([("from", "queued"), ("to", "running")]))
        let steps = (0..<200).map { "step \($0): do part \($0) of <the> task & more" }
        modelCall(
            "planner", step: nil, attempt: nil, prompt: "Split the goal into steps.",
            [("reply", .string("{\"steps\":[…]}")), ("steps", .array(steps.map(JSON.string)))])
        var step = 0
        var replanned = false
        while events.count < target - 4 {
            for attempt in 0..<2 {
                let output = "output of step \(step), attempt \(attempt): <script>alert('x')</script> & done"
                call += 1
                let c = "c\(call)"
                add(
                    EventKind.callStarted.rawValue, role: "actor", step: step, attempt: attempt, callID: c,
                    .object([("agent", .string("actor/\(id)")), ("reask", 0), ("request", request("actor", steps[step % steps.count]))]))
                add(
                    EventKind.callCompleted.rawValue, role: "actor", step: step, attempt: attempt, callID: c,
                    .object([
                        ("reply", ""),
                        (
                            "tool_calls",
                            .array([
                                .object([
                                    ("id", "t1"), ("type", "function"),
                                    ("function", .object([("name", "run_command"), ("arguments", "{\"argv\":[\"ls\",\"-l\"]}")])),
                                ])
                            ])
                        ), ("usage", usage(300, 20)), ("duration_ms", 400.0),
                    ]))
                add(
                    EventKind.toolStarted.rawValue, role: "actor", step: step, attempt: attempt, callID: "\(c).0",
                    .object([("tool", "run_command"), ("tool_call_id", "t1"), ("argv", ["ls", "-l"])]))
                add(
                    EventKind.toolCompleted.rawValue, role: "actor", step: step, attempt: attempt, callID: "\(c).0",
                    .object([
                        ("tool", "run_command"), ("tool_call_id", "t1"), ("ok", true),
                        (
                            "result",
                            .string(
                                "{\"exit_status\":0,\"signal\":0,\"timed_out\":false,\"stdout\":\"total 0\\n-rw-r--r-- a <b>.txt\\n\",\"stdout_truncated\":false,\"stderr\":\"\",\"stderr_truncated\":false}"
                            )
                        ), ("duration_ms", 4.5),
                    ]))
                modelCall(
                    "actor", step: step, attempt: attempt, prompt: steps[step % steps.count],
                    [("reply", .string(JSON.object([("output", .string(output))]).encoded))])
                let pass = attempt == 1 || step % 3 != 0
                let verdict: JSON = .object([
                    ("verdict", pass ? "pass" : "fail"), ("score", pass ? 0.9 : 0.3),
                    ("feedback", .string(pass ? "ok" : "missing <detail> & \"specifics\"")),
                    ("suggestion", pass ? .null : "name the files"),
                ])
                modelCall(
                    "critic", step: step, attempt: attempt, prompt: output, [("reply", .string(verdict.encoded)), ("verdict", verdict)])
                if pass { break }
            }
            step += 1
            if !replanned && step == 5 {
                replanned = true
                add(EventKind.stepExhausted.rawValue, step: step, .object([("attempts", 2), ("last_feedback", "nope")]))
                modelCall(
                    "planner", step: nil, attempt: nil, prompt: "Re-plan.", [("reply", "{}"), ("steps", .array(steps.map(JSON.string)))])
                add(
                    EventKind.jobReplanned.rawValue, role: "planner", step: step,
                    .object([("replan", 1), ("from_step", .int(step)), ("steps", .array(steps.map(JSON.string)))]))
            }
        }
        modelCall(
            "verifier", step: nil, attempt: nil, prompt: "Decide.",
            [("reply", "{\"verified\":true}"), ("verified", true), ("reason", "all <good>")])
        add(EventKind.jobState.rawValue, .object([("from", "running"), ("to", "succeeded"), ("reason", "all <good>")]))
        let job: JSON = .object([
            ("id", .string(id)), ("plan", "synthetic"), ("goal", "render <b>everything</b> & \"quote\" it"), ("status", "succeeded"),
            ("reason", "all <good>"), ("inputs", .object([])), ("idempotency_key", .null), ("created_at", .int(1_700_000_000_000)),
            ("started_at", .int(1_700_000_000_003)), ("finished_at", .int(at)),
        ])
        return (job, events)
    }
}
