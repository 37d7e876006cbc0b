import Foundation
import Store

/// Why a model's reply is not what its role must answer: names the field and what was wrong.
public struct ReplyError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// A critic's judgement of one attempt (the schema of DESIGN.md).
public struct Verdict: Sendable, Equatable {
    public enum Outcome: String, Sendable { case pass, fail }

    public var outcome: Outcome
    /// 0...1
    public var score: Double
    public var feedback: String
    public var suggestion: String?
    /// Where the first wrong part is.
    public var firstError: String?
    /// 0...1
    public var confidence: Double?
    public var failureModes: [String]?
    /// 0...1: how likely a rerun of the step as stated can succeed (read under `.strict` rules only).
    public var feasibility: Double?
    /// At a gate: the arguments the critic would run instead, a JSON object as text (`.strict` only).
    public var arguments: String?
    /// A critic with tools: the ids of its tool calls (`tool_call_id`) whose results the verdict
    /// relies on. Read only when the critic was offered tools.
    public var evidence: [String]?

    public init(
        outcome: Outcome, score: Double, feedback: String, suggestion: String? = nil, firstError: String? = nil,
        confidence: Double? = nil, failureModes: [String]? = nil, feasibility: Double? = nil
    ) {
        self.outcome = outcome
        self.score = score
        self.feedback = feedback
        self.suggestion = suggestion
        self.firstError = firstError
        self.confidence = confidence
        self.failureModes = failureModes
        self.feasibility = feasibility
    }

    /// The JSON Schema a critic's reply must satisfy under `rules`; `evidence` adds the field a
    /// critic with tools may fill.
    public static func schema(_ rules: ReplyRules, evidence: Bool = false) -> JSON {
        switch rules {
        case .shapeOnly:
            guard evidence, case var .object(members) = shapeSchema, case var .object(properties)? = shapeSchema["properties"] else {
                return shapeSchema
            }
            properties.append(("evidence", ["type": "array", "items": ["type": "string"]]))
            members = members.map { $0.0 == "properties" ? ("properties", .object(properties)) : $0 }
            return .object(members)
        case let .strict(passScore): return ReplyForm.verdict(passScore: passScore, evidence: evidence).schema
        }
    }

    /// The schema of formats 1 and 2 (`ReplyRules.shapeOnly`), kept as it was recorded.
    static let shapeSchema: JSON = [
        "type": "object",
        "required": ["verdict", "score", "feedback"],
        "properties": [
            "verdict": ["type": "string", "enum": ["pass", "fail"]],
            "score": ["type": "number", "minimum": 0, "maximum": 1],
            "feedback": ["type": "string"],
            "suggestion": ["type": "string"],
            "first_error": ["type": "string"],
            "confidence": ["type": "number", "minimum": 0, "maximum": 1],
            "failure_modes": ["type": "array", "items": ["type": "string"]],
        ],
    ]

    /// Parses and validates a critic's raw reply under `rules`. Anything that is not a valid verdict
    /// is an error — never a pass. `toolCalls` are the ids of the tool calls the critic made in this
    /// conversation when it was offered tools (nil when not: then `evidence` is not read, so a
    /// critic without tools reads replies exactly as before); under `.strict` rules evidence naming
    /// any other id is invalid.
    public static func parse(_ text: String, rules: ReplyRules, toolCalls: [String]? = nil) throws(ReplyError) -> Verdict {
        let object = try parseObject(text, what: "verdict")
        var verdict = try shape(object)
        if let toolCalls { verdict.evidence = try evidence(object, toolCalls: toolCalls, strict: rules.isStrict) }
        guard case let .strict(passScore) = rules else { return verdict }
        verdict.feasibility = try unitNumber(object, "feasibility", required: false)
        switch object["arguments"] {
        case let value? where value.objectValue != nil:
            verdict.arguments = value.encoded
        case let .string(text)? where !Placeholder.matches(text, field: "arguments"):
            guard case .object? = try? JSON.parse(text) else {
                throw ReplyError("verdict: field 'arguments' must be the tool's arguments as a JSON object, got \(text.prefix(40))")
            }
            verdict.arguments = text
        case nil, .null?, .string?: break
        case let value?:
            throw ReplyError("verdict: field 'arguments' must be the tool's arguments as a JSON object, got \(value.typeName)")
        }
        try verdict.checkConsistent(passScore: passScore)
        return verdict
    }

    /// Under `.strict` rules: a verdict whose score contradicts it, or whose feedback says nothing,
    /// is invalid; optional texts that say nothing are dropped.
    private mutating func checkConsistent(passScore: Double) throws(ReplyError) {
        if outcome == .pass, score < passScore {
            throw ReplyError(
                "verdict: \"pass\" with score \(JSON.number(score).encoded), below the pass threshold \(JSON.number(passScore).encoded) (policy.pass_score): a pass scores at least \(JSON.number(passScore).encoded), otherwise the verdict is \"fail\""
            )
        }
        if outcome == .fail, score >= 1 {
            throw ReplyError("verdict: \"fail\" with the perfect score 1: a fail scores below 1, otherwise the verdict is \"pass\"")
        }
        if Placeholder.matches(feedback, field: "feedback") {
            throw ReplyError(
                "verdict: field 'feedback' says nothing (\(JSON.string(feedback).encoded.prefix(40))): say what is right or wrong in this output"
            )
        }
        if let s = suggestion, Placeholder.matches(s, field: "suggestion") { suggestion = nil }
        if let e = firstError, Placeholder.matches(e, field: "first_error") { firstError = nil }
        failureModes = failureModes?.filter { !Placeholder.matches($0, field: "failure_modes") }
        if failureModes?.isEmpty == true { failureModes = nil }
    }

    /// A verdict of the right shape, whatever it says.
    private static func shape(_ object: JSON) throws(ReplyError) -> Verdict {
        guard let word = object["verdict"] else { throw ReplyError("verdict: missing field 'verdict'") }
        guard let outcome = word.stringValue.flatMap(Outcome.init(rawValue:)) else {
            throw ReplyError("verdict: field 'verdict' must be \"pass\" or \"fail\", got \(word.encoded.prefix(40))")
        }
        let score = try unitNumber(object, "score", required: true)!
        guard let feedback = object["feedback"]?.stringValue else {
            throw ReplyError(
                "verdict: field 'feedback' must be a string\(object["feedback"].map { ", got \($0.typeName)" } ?? " (missing)")")
        }
        let suggestion = try optionalString(object, "suggestion")
        let firstError = try optionalString(object, "first_error")
        let confidence = try unitNumber(object, "confidence", required: false)
        var failureModes: [String]?
        if let modes = object["failure_modes"], !modes.isNull {
            guard let items = modes.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
                throw ReplyError("verdict: field 'failure_modes' must be an array of strings")
            }
            failureModes = items.compactMap(\.stringValue)
        }
        return Verdict(
            outcome: outcome, score: score, feedback: feedback, suggestion: suggestion, firstError: firstError,
            confidence: confidence, failureModes: failureModes)
    }

    /// The `evidence` list: strings, each (under strict rules) the id of one of `toolCalls`.
    private static func evidence(_ object: JSON, toolCalls: [String], strict: Bool) throws(ReplyError) -> [String]? {
        guard let value = object["evidence"], !value.isNull else { return nil }
        guard let items = value.arrayValue, items.allSatisfy({ $0.stringValue != nil }) else {
            throw ReplyError("verdict: field 'evidence' must be a list of the ids of your tool calls, got \(value.encoded.prefix(40))")
        }
        let ids = items.compactMap(\.stringValue)
        if strict, let unknown = ids.first(where: { !toolCalls.contains($0) }) {
            let made = toolCalls.isEmpty ? "you called no tool" : "your tool calls are " + toolCalls.joined(separator: ", ")
            throw ReplyError(
                "verdict: 'evidence' names \(JSON.string(unknown).encoded.prefix(40)), which is not one of your tool calls (\(made)); cite only results you received"
            )
        }
        return ids.isEmpty ? nil : ids
    }

    private static func unitNumber(_ object: JSON, _ key: String, required: Bool) throws(ReplyError) -> Double? {
        guard let value = object[key], !value.isNull else {
            if required { throw ReplyError("verdict: missing field '\(key)'") }
            return nil
        }
        guard let n = value.doubleValue, n >= 0, n <= 1 else {
            throw ReplyError("verdict: field '\(key)' must be a number from 0 to 1, got \(value.encoded.prefix(40))")
        }
        return n
    }

    private static func optionalString(_ object: JSON, _ key: String) throws(ReplyError) -> String? {
        guard let value = object[key], !value.isNull else { return nil }
        guard let s = value.stringValue else { throw ReplyError("verdict: field '\(key)' must be a string, got \(value.typeName)") }
        return s
    }

    public var json: JSON {
        var members: [(String, JSON)] = [
            ("verdict", .string(outcome.rawValue)), ("score", .number(score)), ("feedback", .string(feedback)),
        ]
        if let suggestion { members.append(("suggestion", .string(suggestion))) }
        if let firstError { members.append(("first_error", .string(firstError))) }
        if let confidence { members.append(("confidence", .number(confidence))) }
        if let failureModes { members.append(("failure_modes", .array(failureModes.map(JSON.string)))) }
        if let feasibility { members.append(("feasibility", .number(feasibility))) }
        if let arguments { members.append(("arguments", .string(arguments))) }
        if let evidence { members.append(("evidence", .array(evidence.map(JSON.string)))) }
        return .object(members)
    }
}

/// The planner's reply: the steps, in order.
public enum PlanReply {
    public static let maxSteps = 100

    /// The JSON Schema a plan must satisfy under `rules`.
    public static func schema(_ rules: ReplyRules) -> JSON {
        rules.isStrict ? ReplyForm.plan.schema : shapeSchema
    }

    static let shapeSchema: JSON = [
        "type": "object",
        "required": ["steps"],
        "properties": ["steps": ["type": "array", "minItems": 1, "items": ["type": "string"]]],
    ]

    /// The steps of a planner's reply; under `.strict` rules a step that says nothing is invalid.
    public static func parse(_ text: String, rules: ReplyRules) throws(ReplyError) -> [String] {
        let object = try parseObject(text, what: "plan")
        guard let items = object["steps"]?.arrayValue else { throw ReplyError("plan: field 'steps' must be an array of strings") }
        guard !items.isEmpty else { throw ReplyError("plan: 'steps' is empty") }
        guard items.count <= maxSteps else { throw ReplyError("plan: \(items.count) steps, more than \(maxSteps)") }
        var steps: [String] = []
        for (i, item) in items.enumerated() {
            guard let s = item.stringValue, !s.isEmpty else { throw ReplyError("plan: steps[\(i)] must be a non-empty string") }
            if rules.isStrict, Placeholder.matches(s, field: "step") {
                throw ReplyError("plan: steps[\(i)] says nothing (\(JSON.string(s).encoded.prefix(40))): state the work of each step")
            }
            steps.append(s)
        }
        return steps
    }
}

/// The actor's reply: `{"output": "..."}`, or plain text taken as the output.
public enum ActorReply {
    public static func parse(_ text: String) throws(ReplyError) -> String {
        if let value = try? JSON.parse(text), case .object = value {
            guard let output = value["output"] else { throw ReplyError("actor: JSON reply has no 'output' field") }
            return output.stringValue ?? output.encoded
        }
        guard !text.allSatisfy(\.isWhitespace) else { throw ReplyError("actor: empty reply") }
        return text
    }
}

/// A model verifier's reply: `{"verified": true|false, "reason": "..."}`.
public enum VerifierReply {
    /// The JSON Schema a verifier's reply must satisfy under `rules`.
    public static func schema(_ rules: ReplyRules) -> JSON {
        rules.isStrict ? ReplyForm.verification.schema : shapeSchema
    }

    static let shapeSchema: JSON = [
        "type": "object",
        "required": ["verified"],
        "properties": ["verified": ["type": "boolean"], "reason": ["type": "string"]],
    ]

    /// The decision and its reason; under `.strict` rules a reason, when given, must say something.
    public static func parse(_ text: String, rules: ReplyRules) throws(ReplyError) -> (verified: Bool, reason: String?) {
        let object = try parseObject(text, what: "verification")
        guard let verified = object["verified"]?.boolValue else {
            throw ReplyError("verification: field 'verified' must be true or false")
        }
        let reason = object["reason"]?.stringValue
        if rules.isStrict, let reason, Placeholder.matches(reason, field: "reason") {
            throw ReplyError(
                "verification: field 'reason' says nothing (\(JSON.string(reason).encoded.prefix(40))): say what in the results meets or misses the goal"
            )
        }
        return (verified, reason)
    }
}

/// Parses a model's reply as a JSON object. Models are not strict JSON writers, so two slips are
/// forgiven before the reply is judged: a Markdown code fence around the JSON, and raw control
/// characters (a newline, a tab) inside strings, which constrained decoders emit. Nothing else is
/// repaired; the raw reply is what the transcript records either way.
private func parseObject(_ text: String, what: String) throws(ReplyError) -> JSON {
    let value: JSON
    do {
        value = try JSON.parse(text)
    } catch {
        let repaired = escapingControlCharactersInStrings(strippingCodeFence(text))
        guard let second = try? JSON.parse(repaired) else {
            throw ReplyError("\(what): reply is not JSON (\(error)): \(text.prefix(80))")
        }
        value = second
    }
    guard case .object = value else { throw ReplyError("\(what): reply must be a JSON object, got \(value.typeName)") }
    return value
}

/// The text inside a Markdown code fence (```json … ```), or the text itself.
func strippingCodeFence(_ text: String) -> String {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    guard trimmed.hasPrefix("```"), trimmed.hasSuffix("```"), trimmed.count >= 6 else { return text }
    var inner = trimmed.dropFirst(3).dropLast(3)
    if let newline = inner.firstIndex(of: "\n") { inner = inner[inner.index(after: newline)...] }  // the info string
    return String(inner)
}

/// `text` with control characters inside JSON strings written as escapes.
func escapingControlCharactersInStrings(_ text: String) -> String {
    var out: [UInt8] = []
    out.reserveCapacity(text.utf8.count)
    var inString = false
    var escaped = false
    for byte in text.utf8 {
        if inString {
            if escaped {
                escaped = false
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                inString = false
            } else if byte < 0x20 {
                switch byte {
                case 0x0A: out += Array("\\n".utf8)
                case 0x0D: out += Array("\\r".utf8)
                case 0x09: out += Array("\\t".utf8)
                default: out += Array(String(format: "\\u%04x", byte).utf8)
                }
                continue
            }
        } else if byte == UInt8(ascii: "\"") {
            inString = true
        }
        out.append(byte)
    }
    return String(decoding: out, as: UTF8.self)
}
