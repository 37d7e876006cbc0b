import Store

/// Deterministic replies for the `scripted` backend, keyed by role, step and attempt.
///
/// For each role, rules are tried in order and the first whose conditions all match answers. A reply
/// is a JSON value (encoded as the model's text) or a raw string; `{step}`, `{attempt}`, `{sample}`,
/// `{replan}` and `{goal}` inside its strings are replaced by the call's values (steps and attempts zero-based, as rules
/// match them; `{step_number}` and `{attempt_number}` count from 1, as people read them). A
/// JSON reply that is an object with `tool_calls` calls tools instead (see `ToolCall.list(from:)`),
/// with `content` as its text, if any; `turn` tells the turns of such a call apart.
public struct Script: Sendable, Equatable {
    public var rules: [Role: [ScriptRule]]

    public init(rules: [Role: [ScriptRule]]) {
        self.rules = rules
    }
}

public struct ScriptRule: Sendable, Equatable {
    public var steps: Set<Int>?
    public var attempts: Set<Int>?
    public var replans: Set<Int>?
    public var reasks: Set<Int>?
    public var feedback: Bool?
    /// Model turns within a call that uses tools (`CallContext.turn`).
    public var turns: Set<Int>?
    /// The candidates of an attempt (`CallContext.sample`; a call of a job without samples is sample 0).
    public var samples: Set<Int>?
    /// Whether the call reviews a proposed tool call at a gate (`CallContext.gate`).
    public var gate: Bool?
    public var reply: ScriptReply

    public init(
        steps: Set<Int>? = nil, attempts: Set<Int>? = nil, replans: Set<Int>? = nil, reasks: Set<Int>? = nil,
        feedback: Bool? = nil, turns: Set<Int>? = nil, samples: Set<Int>? = nil, gate: Bool? = nil, reply: ScriptReply
    ) {
        self.samples = samples
        self.steps = steps
        self.attempts = attempts
        self.replans = replans
        self.reasks = reasks
        self.feedback = feedback
        self.turns = turns
        self.gate = gate
        self.reply = reply
    }

    public func matches(_ c: CallContext) -> Bool {
        if let steps, !(c.step.map(steps.contains) ?? false) { return false }
        if let attempts, !(c.attempt.map(attempts.contains) ?? false) { return false }
        if let replans, !replans.contains(c.replan) { return false }
        if let reasks, !reasks.contains(c.reask) { return false }
        if let feedback, feedback != c.hasFeedback { return false }
        if let turns, !turns.contains(c.turn) { return false }
        if let samples, !samples.contains(c.sample ?? 0) { return false }
        if let gate, gate != (c.gate != nil) { return false }
        return true
    }
}

public enum ScriptReply: Sendable, Equatable {
    case json(JSON)
    case raw(String)
}

/// The `scripted` model backend: answers instantly from a `Script`. Used by tests, the demo and W1.
public struct ScriptedBackend: ModelBackend {
    public let script: Script

    public init(script: Script) {
        self.script = script
    }

    public func complete(_ request: ModelRequest) async throws(ModelCallError) -> ModelReply {
        try reply(to: request.context)
    }

    /// The reply for a call, computed synchronously (the backend never waits).
    public func reply(to c: CallContext) throws(ModelCallError) -> ModelReply {
        guard let rule = script.rules[c.role]?.first(where: { $0.matches(c) }) else {
            // Steps and attempts as a person counts them, then as the rules' zero-based keys match them.
            var message = "scripted model has no reply for \(c.role.rawValue)"
            if let step = c.step, let attempt = c.attempt {
                message += " at step \(step + 1), attempt \(attempt + 1) (no rule matches step: \(step), attempt: \(attempt))"
            } else if let step = c.step {
                message += " at step \(step + 1) (no rule matches step: \(step))"
            }
            throw ModelCallError(.badReply, message)
        }
        switch rule.reply {
        case let .json(value):
            let filled = Self.fill(value, c)
            if let listed = filled["tool_calls"], let calls = ToolCall.list(from: listed) {
                return ModelReply(content: filled["content"]?.stringValue ?? "", toolCalls: calls)
            }
            return ModelReply(content: filled.encoded)
        case let .raw(text): return ModelReply(content: Self.fill(text, c))
        }
    }

    static func fill(_ value: JSON, _ c: CallContext) -> JSON {
        switch value {
        case let .string(s): return .string(fill(s, c))
        case let .array(items): return .array(items.map { fill($0, c) })
        case let .object(members): return .object(members.map { ($0.0, fill($0.1, c)) })
        default: return value
        }
    }

    /// Substitutes the placeholders in one pass over the bytes (this runs for every scripted reply, so
    /// it avoids repeated searching).
    static func fill(_ text: String, _ c: CallContext) -> String {
        let bytes = Array(text.utf8)
        guard bytes.contains(UInt8(ascii: "{")) else { return text }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "{"), let (name, length) = placeholder(bytes, at: i) {
                switch name {
                case .step: out.append(contentsOf: (c.step.map(String.init) ?? "").utf8)
                case .attempt: out.append(contentsOf: (c.attempt.map(String.init) ?? "").utf8)
                case .stepNumber: out.append(contentsOf: (c.step.map { String($0 + 1) } ?? "").utf8)
                case .attemptNumber: out.append(contentsOf: (c.attempt.map { String($0 + 1) } ?? "").utf8)
                case .replan: out.append(contentsOf: String(c.replan).utf8)
                case .sample: out.append(contentsOf: String(c.sample ?? 0).utf8)
                case .goal: out.append(contentsOf: c.goal.utf8)
                }
                i += length
            } else {
                out.append(b)
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private enum Placeholder: CaseIterable {
        case step, attempt, replan, goal, stepNumber, attemptNumber, sample

        var token: [UInt8] {
            switch self {
            case .step: return Array("{step}".utf8)
            case .attempt: return Array("{attempt}".utf8)
            case .replan: return Array("{replan}".utf8)
            case .goal: return Array("{goal}".utf8)
            case .stepNumber: return Array("{step_number}".utf8)
            case .attemptNumber: return Array("{attempt_number}".utf8)
            case .sample: return Array("{sample}".utf8)
            }
        }
    }

    private static let tokens = Placeholder.allCases.map { ($0, $0.token) }

    private static func placeholder(_ bytes: [UInt8], at i: Int) -> (Placeholder, Int)? {
        for (name, token) in tokens where i + token.count <= bytes.count {
            if bytes[i..<(i + token.count)].elementsEqual(token) { return (name, token.count) }
        }
        return nil
    }
}
