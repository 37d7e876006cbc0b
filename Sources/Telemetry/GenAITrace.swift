import Store

/// A job's recorded history as OpenTelemetry spans, following the GenAI semantic conventions, in
/// OTLP/JSON (the protobuf JSON mapping of `ExportTraceServiceRequest`).
///
/// One trace per job; its id and every span id are derived from the job id and the call id, so the
/// same job always exports the same trace:
///
/// - the root span `job {plan}` (the job, from its first to its last event),
/// - per agent call (`call.started` → `call.completed` / `call.failed`): `invoke_agent {role}`, and
///   under it `chat {model}` (the model request). The agent span also covers the tools the call asked
///   for; a failed call sets `error.type` and the error status on both.
/// - per tool call (`tool.started` → `tool.completed`): `execute_tool {tool}` under the agent span of
///   the model call that asked for it.
public enum GenAITrace {
    public static let scopeName = "agentd"

    /// The `ExportTraceServiceRequest` of a job.
    public static func request(job: JobRecord, events: [EventRecord], version: String = "0.1.0") -> JSON {
        .object([
            (
                "resourceSpans",
                [
                    .object([
                        (
                            "resource",
                            .object([
                                (
                                    "attributes",
                                    .array([attribute("service.name", "agentd"), attribute("service.version", .string(version))])
                                )
                            ])
                        ),
                        (
                            "scopeSpans",
                            [
                                .object([
                                    ("scope", .object([("name", .string(scopeName)), ("version", .string(version))])),
                                    ("spans", .array(spans(job: job, events: events).map(\.json))),
                                ])
                            ]
                        ),
                    ])
                ]
            )
        ])
    }

    /// One span, before encoding.
    public struct Span: Sendable, Equatable {
        public var traceID: String
        public var spanID: String
        public var parentSpanID: String?
        public var name: String
        /// 1 internal, 3 client (OTLP's `SpanKind`).
        public var kind: Int
        public var startMillis: Int64
        public var endMillis: Int64
        public var attributes: [(String, JSON)]
        /// The error's message when the span failed (status code 2).
        public var error: String?

        public static func == (a: Span, b: Span) -> Bool { a.json == b.json }

        public func attribute(_ key: String) -> JSON? { attributes.first { $0.0 == key }?.1 }

        public var json: JSON {
            var members: [(String, JSON)] = [("traceId", .string(traceID)), ("spanId", .string(spanID))]
            if let parentSpanID { members.append(("parentSpanId", .string(parentSpanID))) }
            members += [
                ("name", .string(name)), ("kind", .int(kind)),
                ("startTimeUnixNano", .string(nanos(startMillis))), ("endTimeUnixNano", .string(nanos(endMillis))),
                ("attributes", .array(attributes.map { GenAITrace.attribute($0.0, $0.1) })),
            ]
            if let error {
                members.append(("status", .object([("code", 2), ("message", .string(error))])))
            } else {
                members.append(("status", .object([("code", 1)])))
            }
            return .object(members)
        }

        private func nanos(_ millis: Int64) -> String { millis == 0 ? "0" : "\(millis)000000" }
    }

    /// The job's spans: the root first, then in the order their events were recorded.
    public static func spans(job: JobRecord, events: [EventRecord]) -> [Span] {
        let trace = traceID(job: job.id)
        let rootID = spanID(job: job.id, name: "job")
        let plan = (try? JSON.parse(job.plan)) ?? .null
        let first = events.first?.at ?? job.createdAt
        let last = max(events.last?.at ?? first, job.finishedAt ?? 0)
        var root = Span(
            traceID: trace, spanID: rootID, parentSpanID: nil, name: "job \(job.planName)", kind: 1, startMillis: min(first, job.createdAt),
            endMillis: last,
            attributes: [
                ("gen_ai.conversation.id", .string(job.id)), ("agentd.job.id", .string(job.id)),
                ("agentd.plan.name", .string(job.planName)), ("agentd.job.status", .string(job.status.rawValue)),
            ])
        if job.status == .failed || job.status == .cancelled {
            root.error = job.reason ?? job.status.rawValue
            root.attributes.append(("error.type", .string(job.status == .cancelled ? "cancelled" : "job_failed")))
        }

        struct Call {
            var agent: Span
            var chat: Span
            var ended = false
        }
        var calls: [String: Call] = [:]
        var callOrder: [String] = []
        var tools: [String: Span] = [:]
        var toolOrder: [String] = []
        // A gate's review: from its request to its decision, a child of the agent call that proposed the tool call.
        var gates: [String: Span] = [:]
        var gateOrder: [String] = []

        for event in events {
            guard let callID = event.callID else { continue }
            let role = event.role ?? "agent"
            switch event.eventKind {
            case .callStarted?:
                guard calls[callID] == nil else { continue }  // a restarted call keeps its first start
                let started = event.payload(as: CallStarted.self)
                let request = started?.summary
                let modelKey = request?.model ?? "unknown"
                let spec = plan["models"]?[modelKey]
                let provider = spec?["backend"]?.stringValue ?? (modelKey == "command" ? "command" : "agentd")
                let model = spec?["model"]?.stringValue ?? modelKey
                var common: [(String, JSON)] = [
                    ("gen_ai.provider.name", .string(provider)), ("gen_ai.conversation.id", .string(job.id)),
                    ("gen_ai.agent.name", .string(role)), ("gen_ai.request.model", .string(model)),
                ]
                if let temperature = request?.temperature {
                    common.append(("gen_ai.request.temperature", .number(temperature)))
                }
                common += [("agentd.call.id", .string(callID))]
                if let step = event.step { common.append(("agentd.step", .int(step))) }
                if let attempt = event.attempt { common.append(("agentd.attempt", .int(attempt))) }
                let agentID = spanID(job: job.id, name: "agent/\(callID)")
                let agent = Span(
                    traceID: trace, spanID: agentID, parentSpanID: rootID, name: "invoke_agent \(role)", kind: 1,
                    startMillis: event.at, endMillis: event.at,
                    attributes: [("gen_ai.operation.name", "invoke_agent")] + common + [
                        ("gen_ai.agent.id", .string(started?.agent ?? "\(role)/\(job.id)"))
                    ])
                let chat = Span(
                    traceID: trace, spanID: spanID(job: job.id, name: "chat/\(callID)"), parentSpanID: agentID, name: "chat \(model)",
                    kind: 3, startMillis: event.at, endMillis: event.at, attributes: [("gen_ai.operation.name", "chat")] + common)
                calls[callID] = Call(agent: agent, chat: chat)
                callOrder.append(callID)
            case .callCompleted?, .callFailed?:
                guard var call = calls[callID] else { continue }
                call.ended = true
                call.agent.endMillis = max(call.agent.endMillis, event.at)
                call.chat.endMillis = event.at
                // A payload of the wrong shape is exported without the attributes it would give.
                let completed = event.eventKind == .callCompleted ? event.payload(as: CallCompleted.self) : nil
                if let model = completed?.sent?["model"]?.stringValue {
                    call.chat.attributes.append(("gen_ai.response.model", .string(model)))
                }
                if let usage = completed?.usage {
                    for (n, name) in [(usage.inputTokens, "gen_ai.usage.input_tokens"), (usage.outputTokens, "gen_ai.usage.output_tokens")]
                    {
                        call.chat.attributes.append((name, .int(n)))
                        call.agent.attributes.append((name, .int(n)))
                    }
                }
                if event.eventKind == .callFailed {
                    let failed = event.payload(as: CallFailed.self)
                    let type = failed?.error ?? "error"
                    let message = failed?.message ?? type
                    for keyPath in [\Call.agent, \Call.chat] {
                        call[keyPath: keyPath].attributes.append(("error.type", .string(type)))
                        call[keyPath: keyPath].error = message
                    }
                } else if case let .invalid(invalid)? = completed?.outcome {
                    call.agent.attributes.append(("agentd.reply.invalid", .string(invalid)))
                }
                calls[callID] = call
            case .gateRequested?:
                guard gates[callID] == nil, let requested = event.payload(as: GateRequested.self) else { continue }
                let modelCall = String(callID.prefix { $0 != "." })
                gates[callID] = Span(
                    traceID: trace, spanID: spanID(job: job.id, name: "gate/\(callID)"),
                    parentSpanID: calls[modelCall] != nil ? spanID(job: job.id, name: "agent/\(modelCall)") : rootID,
                    name: "gate \(requested.tool)", kind: 1, startMillis: event.at, endMillis: event.at,
                    attributes: [
                        ("gen_ai.conversation.id", .string(job.id)), ("gen_ai.tool.name", .string(requested.tool)),
                        ("agentd.gate.id", .string(callID)), ("agentd.gate.review", .string(requested.review)),
                        ("agentd.gate.request_sha256", .string(requested.requestSHA256)),
                    ])
                gateOrder.append(callID)
            case .gateDecided?:
                guard var span = gates[callID], let decided = event.payload(as: GateDecided.self) else { continue }
                span.endMillis = event.at
                span.attributes += [
                    ("agentd.gate.decision", .string(decided.decision.rawValue)), ("agentd.gate.decided_by", .string(decided.by.rawValue)),
                ]
                if let user = decided.user { span.attributes.append(("agentd.gate.user", .string(user))) }
                if decided.editedArguments != nil { span.attributes.append(("agentd.gate.edited", true)) }
                gates[callID] = span
            case .toolStarted?:
                guard tools[callID] == nil else { continue }
                let started = event.payload(as: ToolStarted.self)
                let tool = started?.tool ?? "tool"
                let modelCall = String(callID.prefix { $0 != "." })
                var attributes: [(String, JSON)] = [
                    ("gen_ai.operation.name", "execute_tool"), ("gen_ai.tool.name", .string(tool)), ("gen_ai.tool.type", "function"),
                    ("gen_ai.conversation.id", .string(job.id)), ("gen_ai.agent.name", .string(role)), ("agentd.call.id", .string(callID)),
                ]
                if let id = started?.toolCallID { attributes.append(("gen_ai.tool.call.id", .string(id))) }
                tools[callID] = Span(
                    traceID: trace, spanID: spanID(job: job.id, name: "tool/\(callID)"),
                    parentSpanID: calls[modelCall] != nil ? spanID(job: job.id, name: "agent/\(modelCall)") : rootID,
                    name: "execute_tool \(tool)", kind: 1, startMillis: event.at, endMillis: event.at, attributes: attributes)
                toolOrder.append(callID)
            case .toolCompleted?:
                guard var span = tools[callID] else { continue }
                span.endMillis = event.at
                if event.payload(as: ToolCompleted.self)?.ok == false {
                    span.attributes.append(("error.type", "tool_error"))
                    span.error = "the tool failed"
                }
                tools[callID] = span
                let modelCall = String(callID.prefix { $0 != "." })
                if var call = calls[modelCall] {
                    call.agent.endMillis = max(call.agent.endMillis, event.at)
                    calls[modelCall] = call
                }
            default:
                continue
            }
        }

        var out = [root]
        for id in callOrder {
            guard var call = calls[id] else { continue }
            if !call.ended {
                // Abandoned (cancelled, timed out, daemon stopped): ends with the job, as an error.
                for keyPath in [\Call.agent, \Call.chat] {
                    call[keyPath: keyPath].endMillis = max(call[keyPath: keyPath].endMillis, last)
                    call[keyPath: keyPath].attributes.append(("error.type", "incomplete"))
                    call[keyPath: keyPath].error = "the call did not complete"
                }
            }
            out.append(call.agent)
            out.append(call.chat)
        }
        for id in toolOrder {
            guard var span = tools[id] else { continue }
            if span.endMillis == span.startMillis && span.error == nil
                && !events.contains(where: { $0.kind == EventKind.toolCompleted.rawValue && $0.callID == id })
            {
                span.endMillis = max(span.endMillis, last)
                span.attributes.append(("error.type", "incomplete"))
                span.error = "the tool did not complete"
            }
            out.append(span)
        }
        for id in gateOrder {
            guard var span = gates[id] else { continue }
            if span.attribute("agentd.gate.decision") == nil {
                // Still waiting when exported, or its job ended first: open until the job's last event.
                span.endMillis = max(span.endMillis, last)
                span.attributes.append(("agentd.gate.decision", "pending"))
            }
            out.append(span)
        }
        return out
    }

    // MARK: Encoding

    /// An OTLP `KeyValue` with a typed `AnyValue` (int64 values as strings, per the JSON mapping).
    static func attribute(_ key: String, _ value: JSON) -> JSON {
        let typed: JSON
        switch value {
        case let .string(s): typed = .object([("stringValue", .string(s))])
        case let .bool(b): typed = .object([("boolValue", .bool(b))])
        case let .number(n):
            if n.rounded() == n, abs(n) < 9.0e15 {
                typed = .object([("intValue", .string(String(Int64(n))))])
            } else {
                typed = .object([("doubleValue", .number(n))])
            }
        default: typed = .object([("stringValue", .string(value.encoded))])
        }
        return .object([("key", .string(key)), ("value", typed)])
    }

    // MARK: Ids

    /// 16 bytes of hex from the job id; never all zero.
    public static func traceID(job: String) -> String {
        hex(hash(job, seed: 0x7472_6163_6500_0001)) + hex(hash(job, seed: 0x7472_6163_6500_0002))
    }

    /// 8 bytes of hex from the job id and the span's name within the job.
    public static func spanID(job: String, name: String) -> String {
        hex(hash(job + "\u{0}" + name, seed: 0x7370_616E_0000_0001))
    }

    /// FNV-1a (64 bit) from `seed`, finished with a SplitMix64 mix; never zero.
    static func hash(_ text: String, seed: UInt64) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ seed
        for byte in text.utf8 {
            h ^= UInt64(byte)
            h = h &* 0x0000_0100_0000_01B3
        }
        h = (h ^ (h >> 30)) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ (h >> 27)) &* 0x94D0_49BB_1331_11EB
        h ^= h >> 31
        return h == 0 ? 1 : h
    }

    static func hex(_ value: UInt64) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0..<16 { out[i] = digits[Int((value >> UInt64((15 - i) * 4)) & 0xF)] }
        return String(decoding: out, as: UTF8.self)
    }
}
