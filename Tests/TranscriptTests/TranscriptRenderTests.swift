import Store
import XCTest

@testable import Transcript

final class TranscriptRenderTests: XCTestCase {
    /// A small job: a plan, step 1 passes, step 2 fails then passes after feedback (with a tool call),
    /// the verifier accepts. Recorded text carries markup.
    private func smallJob() -> (JSON, [JSON]) {
        var events: [JSON] = []
        func add(_ kind: String, role: String? = nil, step: Int? = nil, attempt: Int? = nil, call: String? = nil, _ payload: JSON) {
            var fields: [(String, JSON)] = [
                ("job", "J1"), ("seq", .int(events.count + 1)), ("at", .int(1000 + events.count)), ("kind", .string(kind)),
                ("role", role.map(JSON.string) ?? .null), ("step", step.map(JSON.int) ?? .null),
                ("attempt", attempt.map(JSON.int) ?? .null),
            ]
            if let call { fields.append(("call", .string(call))) }
            fields.append(("payload", payload))
            events.append(.object(fields))
        }
        let request: JSON = ["model": "m", "role": "actor", "messages": [["role": "user", "content": "do <it> & 'quote'"]]]
        add("job.submitted", ["plan": "p", "goal": "g", "inputs": [:]])
        add("job.state", ["from": "queued", "to": "running"])
        add("call.started", role: "planner", call: "c1", ["agent": "planner/J1", "reask": 0, "request": request])
        add("call.completed", role: "planner", call: "c1", ["reply": "{}", "duration_ms": 1.5, "steps": ["first <step>", "second step"]])
        add("call.started", role: "actor", step: 0, attempt: 0, call: "c2", ["reask": 0, "request": request])
        add(
            "call.completed", role: "actor", step: 0, attempt: 0, call: "c2",
            ["reply": #"{"output":"<script>alert(1)</script>"}"#, "usage": ["input_tokens": 10, "output_tokens": 5], "duration_ms": 2])
        add("call.started", role: "critic", step: 0, attempt: 0, call: "c3", ["reask": 0, "request": request])
        add(
            "call.completed", role: "critic", step: 0, attempt: 0, call: "c3",
            ["reply": "{}", "verdict": ["verdict": "pass", "score": 0.9, "feedback": "fine"], "duration_ms": 1])
        add("call.started", role: "actor", step: 1, attempt: 0, call: "c4", ["reask": 0, "request": request])
        add(
            "call.completed", role: "actor", step: 1, attempt: 0, call: "c4",
            [
                "reply": "", "tool_calls": [["id": "t", "type": "function", "function": ["name": "run_command", "arguments": "{}"]]],
                "duration_ms": 4,
            ])
        add(
            "tool.started", role: "actor", step: 1, attempt: 0, call: "c4.0",
            ["tool": "run_command", "tool_call_id": "t1", "argv": ["ls", "-l"]])
        add(
            "tool.completed", role: "actor", step: 1, attempt: 0, call: "c4.0",
            ["tool": "run_command", "tool_call_id": "t1", "ok": true, "result": #"{"exit_status":0,"stdout":"a.txt\n"}"#, "duration_ms": 3])
        add("call.started", role: "actor", step: 1, attempt: 0, call: "c5", ["reask": 0, "request": request])
        add("call.completed", role: "actor", step: 1, attempt: 0, call: "c5", ["reply": "plain draft", "duration_ms": 2])
        add("call.started", role: "critic", step: 1, attempt: 0, call: "c6", ["reask": 0, "request": request])
        add("call.completed", role: "critic", step: 1, attempt: 0, call: "c6", ["reply": "nope", "invalid": "not JSON", "duration_ms": 1])
        add("call.started", role: "critic", step: 1, attempt: 0, call: "c7", ["reask": 1, "request": request])
        add(
            "call.completed", role: "critic", step: 1, attempt: 0, call: "c7",
            [
                "reply": "{}",
                "verdict": [
                    "verdict": "fail", "score": 0.2, "feedback": "needs \"detail\" & <more>\nsecond line", "suggestion": "add x",
                    "first_error": "line 2", "failure_modes": ["vague", "short"], "feasibility": 0.9,
                ],
                "duration_ms": 1,
            ])
        add("call.started", role: "actor", step: 1, attempt: 1, call: "c8", ["reask": 0, "request": request])
        add("call.completed", role: "actor", step: 1, attempt: 1, call: "c8", ["reply": "better draft", "duration_ms": 2])
        add("call.started", role: "critic", step: 1, attempt: 1, call: "c9", ["reask": 0, "request": request])
        add(
            "call.completed", role: "critic", step: 1, attempt: 1, call: "c9",
            ["reply": "{}", "verdict": ["verdict": "pass", "score": 0.8, "feedback": "ok"], "duration_ms": 1])
        add("call.started", role: "verifier", call: "c10", ["reask": 0, "request": request])
        add(
            "call.completed", role: "verifier", call: "c10",
            ["reply": "{}", "verified": true, "reason": "good", "cost_usd": 0.5, "duration_ms": 1])
        add("job.state", ["from": "running", "to": "succeeded", "reason": "good"])
        let job: JSON = [
            "id": "J1", "plan": "p", "goal": "g <b>", "status": "succeeded", "reason": "good", "inputs": [:], "created_at": 900,
            "started_at": 1000, "finished_at": 1250,
        ]
        return (job, events)
    }

    func testModelArrangesStepsAttemptsAndSummary() {
        let (job, events) = smallJob()
        let model = TranscriptModel(job: job, events: events)
        XCTAssertEqual(model.steps.count, 2)
        XCTAssertEqual(model.steps[0].title, "first <step>")
        XCTAssertEqual(model.steps[1].attempts.map(\.outcome), [.fail, .pass])
        XCTAssertEqual(model.steps[1].attempts[1].feedbackCarried, "needs \"detail\" & <more>\nsecond line")
        XCTAssertEqual(model.steps[1].attempts[1].suggestionCarried, "add x")
        XCTAssertEqual(model.steps[1].attempts[0].tools.count, 1)
        XCTAssertEqual(model.tools[0].exitStatus, 0)
        XCTAssertEqual(model.tools[0].stdout, "a.txt\n")
        let s = model.summary
        XCTAssertEqual(s.status, "succeeded")
        XCTAssertEqual(s.completedCalls, 10)
        XCTAssertEqual(s.inputTokens, 10)
        XCTAssertEqual(s.outputTokens, 5)
        XCTAssertEqual(s.costUSD, 0.5)
        XCTAssertEqual(s.reruns, 1)
        XCTAssertEqual(s.replans, 0)
        XCTAssertEqual(s.durationMS, 250)
        XCTAssertEqual(s.callsByRoleText, "planner 1, actor 4, critic 4, verifier 1")
    }

    func testHTMLEscapesRecordedTextAndTagsEveryPart() {
        let (job, events) = smallJob()
        let html = TranscriptModel.render(job: job, events: events, format: .html)
        XCTAssertFalse(html.contains("<script>alert"), "model output must be escaped")
        XCTAssertTrue(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        XCTAssertTrue(html.contains("needs &quot;detail&quot; &amp; &lt;more&gt;"))
        XCTAssertTrue(html.contains("do &lt;it&gt; &amp; &#39;quote&#39;"))
        XCTAssertFalse(html.contains("src=\"http"), "nothing external")
        XCTAssertFalse(html.contains("href=\"http"), "nothing external")
        for id in ["step-r0-s0", "step-r0-s1", "attempt-r0-s0-a0", "attempt-r0-s1-a0", "attempt-r0-s1-a1", "summary", "verifier"] {
            XCTAssertTrue(html.contains("id=\"\(id)\""), id)
        }
        XCTAssertEqual(html.components(separatedBy: "data-verdict=\"pass\"").count - 1, 2)
        XCTAssertEqual(html.components(separatedBy: "data-verdict=\"fail\"").count - 1, 1)
        XCTAssertEqual(html.components(separatedBy: "data-verdict=\"invalid\"").count - 1, 1)
        XCTAssertTrue(html.contains("data-tool=\"run_command\""))
        XCTAssertTrue(html.contains("data-reruns=\"1\""))
        XCTAssertTrue(html.contains("<details class=\"prompt\">"))
        // Only the page's own script element.
        XCTAssertEqual(html.components(separatedBy: "<script").count - 1, 1)
    }

    func testTextAndMarkdownShowVerdictsRerunsAndTools() {
        let (job, events) = smallJob()
        let text = TranscriptModel.render(job: job, events: events, format: .text)
        for needle in [
            "Step 2: second step", "Attempt 2 (rerun)", "feedback carried into this rerun: needs \"detail\" & <more>",
            "FAIL (score 0.20)", "PASS (score 0.80)", "INVALID reply: not JSON", "tool run_command [ls, -l] → ok, exit 0",
            "VERIFIED: good", "reruns: 1", "re-plans: 0", "cost: $0.5000", "tokens: 15 (10 in, 5 out)",
            "first error: line 2", "failure modes: vague; short", "feasibility: 0.9",
        ] {
            XCTAssertTrue(text.contains(needle), "text lacks \(needle):\n\(text)")
        }
        // A feedback's second line stays under its first.
        let feedbackLine = text.split(separator: "\n").first { $0.contains("FAIL (score 0.20)") } ?? ""
        let indent = feedbackLine.prefix { $0 == " " }.count
        XCTAssertTrue(text.contains("\n" + String(repeating: " ", count: indent + 2) + "second line\n"), text)
        let html = TranscriptModel.render(job: job, events: events, format: .html)
        XCTAssertTrue(html.contains("<div class=\"detail\">failure modes: vague; short</div>"), html)
        let md = TranscriptModel.render(job: job, events: events, format: .md)
        XCTAssertTrue(md.contains("## Step 2: second step"), md)
        XCTAssertTrue(md.contains("### Attempt 2 (rerun)"), md)
        XCTAssertTrue(md.contains("\\<script\\>") || md.contains("```text\n"), md)
        XCTAssertTrue(md.contains("needs \"detail\" & \\<more\\>"), md)
    }

    /// One step judged by a jury of two jurors under `mean_score >= 0.7`: both pass attempt 1 on their
    /// own, but the jury fails it (0.6); the rerun carries the jury's feedback, and passes.
    private func juryJob() -> (JSON, [JSON]) {
        var events: [JSON] = []
        func add(_ kind: String, role: String? = nil, step: Int? = nil, attempt: Int? = nil, call: String? = nil, _ payload: JSON) {
            var fields: [(String, JSON)] = [
                ("job", "J2"), ("seq", .int(events.count + 1)), ("at", .int(1000 + events.count)), ("kind", .string(kind)),
                ("role", role.map(JSON.string) ?? .null), ("step", step.map(JSON.int) ?? .null),
                ("attempt", attempt.map(JSON.int) ?? .null),
            ]
            if let call { fields.append(("call", .string(call))) }
            fields.append(("payload", payload))
            events.append(.object(fields))
        }
        let request: JSON = ["model": "m", "role": "critic", "messages": [["role": "user", "content": "judge"]]]
        add("job.submitted", ["plan": "p", "goal": "g", "inputs": [:]])
        add("job.state", ["from": "queued", "to": "running", "steps": ["the <step>"]])
        for attempt in 0..<2 {
            let actor = "c\(attempt * 2 + 1)"
            add(
                "call.started", role: "actor", step: 0, attempt: attempt, call: actor,
                ["agent": "actor/J2", "reask": 0, "request": request])
            add(
                "call.completed", role: "actor", step: 0, attempt: attempt, call: actor,
                ["reply": .string("draft \(attempt)"), "duration_ms": 1])
            let fan = "c\(attempt * 2 + 2)"
            add(
                "jury.convened", role: "critic", step: 0, attempt: attempt,
                ["rule": "mean_score >= 0.7", "jurors": ["facts", "style"], "order": [1, 0], "seed": 42])
            let score = attempt == 0 ? 0.6 : 0.8
            for (branch, juror) in ["style", "facts"].enumerated() {
                let call = "\(fan)-\(branch + 1)-1"
                add(
                    "call.started", role: "critic", step: 0, attempt: attempt, call: call,
                    ["agent": .string("critic/J2/\(juror)"), "reask": 0, "request": request])
                add(
                    "call.completed", role: "critic", step: 0, attempt: attempt, call: call,
                    [
                        "reply": "{}",
                        "verdict": [
                            "verdict": "pass", "score": .number(score), "feedback": .string("\(juror) <ok>"), "suggestion": "polish",
                        ],
                        "duration_ms": 1,
                    ])
            }
            for (index, juror) in ["facts", "style"].enumerated() {
                add(
                    "jury.voted", role: "critic", step: 0, attempt: attempt, call: "\(fan)-\(2 - index)-1",
                    [
                        "juror": .string(juror), "index": .int(index), "outcome": "pass", "score": .number(score),
                        "feedback": .string("\(juror) <ok>"),
                    ])
            }
            let passed = attempt == 1
            add(
                "jury.decided", role: "critic", step: 0, attempt: attempt,
                [
                    "rule": "mean_score >= 0.7", "passes": 2, "fails": 0, "errors": 0, "outcome": passed ? "pass" : "fail",
                    "score": .number(score),
                    "feedback": .string("mean_score >= 0.7: 2 pass, 0 fail, 0 error\nfacts: facts <ok>\nstyle: style <ok>"),
                ])
        }
        add("job.state", ["from": "running", "to": "succeeded", "reason": "good"])
        let job: JSON = ["id": "J2", "plan": "p", "goal": "g", "status": "succeeded", "inputs": [:]]
        return (job, events)
    }

    func testAJurysOrderVotesAndDecisionAreShown() {
        let (job, events) = juryJob()
        let model = TranscriptModel(job: job, events: events)
        let attempts = model.steps[0].attempts
        XCTAssertEqual(attempts.map(\.outcome), [.fail, .pass], "the jury decides the attempt, not its jurors' verdicts")
        XCTAssertEqual(attempts[0].jury?.askedOrder, ["style", "facts"])
        XCTAssertEqual(attempts[0].jury?.votes.map(\.juror), ["facts", "style"])
        XCTAssertEqual(attempts[1].feedbackCarried, "mean_score >= 0.7: 2 pass, 0 fail, 0 error\nfacts: facts <ok>\nstyle: style <ok>")
        XCTAssertEqual(model.calls.compactMap(\.juror), ["style", "facts", "style", "facts"])
        XCTAssertNil(attempts[1].suggestionCarried, "not the last juror's: the jury's merged suggestions are not recorded")

        let text = TranscriptModel.render(job: job, events: events, format: .text)
        for needle in [
            "critic c2-1-1 (juror style)", "jury (mean_score >= 0.7): asked in the order style, facts (seed 42)",
            "facts: PASS (score 0.60): facts <ok>", "jury decided FAIL by mean_score >= 0.7: 2 pass, 0 fail, 0 error (score 0.60)",
            "jury decided PASS by mean_score >= 0.7: 2 pass, 0 fail, 0 error (score 0.80)",
            "feedback carried into this rerun: mean_score >= 0.7: 2 pass, 0 fail, 0 error",
        ] {
            XCTAssertTrue(text.contains(needle), "text lacks \(needle):\n\(text)")
        }
        let html = TranscriptModel.render(job: job, events: events, format: .html)
        XCTAssertTrue(html.contains("<div class=\"jury\" data-rule=\"mean_score &gt;= 0.7\" data-outcome=\"fail\">"), html)
        XCTAssertTrue(html.contains("<li class=\"vote vote-pass\" data-juror=\"facts\" data-vote=\"pass\">"), html)
        XCTAssertTrue(html.contains("<span class=\"juror\">juror style</span>"), html)
        XCTAssertFalse(html.contains("facts <ok>"), "recorded text is escaped")
        XCTAssertTrue(html.contains("data-outcome=\"fail\">\n<h3>Attempt 1"), "the attempt's outcome is the jury's")
        let md = TranscriptModel.render(job: job, events: events, format: .md)
        XCTAssertTrue(md.contains("jury decided FAIL by mean\\_score \\>= 0.7"), md)
    }

    func testMarkdownFenceOutlastsBackticksInOutput() {
        let (job, events) = smallJob()
        let tricky = events.map { e -> JSON in
            guard e["call"]?.stringValue == "c8", e["kind"]?.stringValue == "call.completed" else { return e }
            return e.setting("payload", ["reply": "````\n# not a heading\n````", "duration_ms": 2])
        }
        let md = TranscriptModel.render(job: job, events: tricky, format: .md)
        XCTAssertTrue(md.contains("`````text"), md)
    }

    func testSyntheticJobRendersEveryStepAndIsEscaped() {
        let (job, events) = SyntheticJob.make(events: 1000)
        XCTAssertGreaterThanOrEqual(events.count, 1000)
        let model = TranscriptModel(job: job, events: events)
        XCTAssertEqual(model.summary.replans, 1)
        XCTAssertGreaterThan(model.summary.reruns, 0)
        let html = HTMLRenderer.render(model)
        XCTAssertEqual(html.components(separatedBy: "class=\"attempt ").count - 1, model.summary.attempts)
        XCTAssertFalse(html.contains("<script>alert"))
    }
}
