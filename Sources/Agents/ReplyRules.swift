import Foundation

/// How a job's agents are asked for their replies and how strictly the replies are read.
///
/// Fixed by the job's record format (`RecordFormat`), because both are part of what a recovery or
/// a replay must reproduce: the requests are recorded byte for byte, and a reply read another way
/// would lead the job somewhere else. Pure value; any thread.
///
/// - `.shapeOnly` (formats 1 and 2): prompts end with a fill-in example of the reply
///   (`{"verdict": "pass" or "fail", "score": 0..1, "feedback": "..."}`), and a reply is read for its
///   shape only — which let a small model pass an output with score 0 and feedback copied from the
///   example.
/// - `.strict` (format 3 on): prompts describe each field and its meaning (`ReplyForm`), with nothing
///   to copy; a verdict that contradicts itself (a pass scored below `passScore`, a fail with a
///   perfect score) or a field that only repeats a placeholder is invalid, recorded and asked again
///   like an unparsable reply; a verdict's `feasibility` is read.
public enum ReplyRules: Sendable, Equatable {
    case shapeOnly
    /// `passScore`: the least score a pass may have (`policy.pass_score`).
    case strict(passScore: Double)

    /// The rules of a job written in record format `format` under `policy`.
    public init(format: Int, policy: Policy) {
        self = format >= 3 ? .strict(passScore: policy.passScore) : .shapeOnly
    }

    public var isStrict: Bool {
        if case .strict = self { return true }
        return false
    }
}

/// Text that fills a field without saying anything: what small models copy out of a prompt's
/// example. Under `.strict` rules a required field holding one makes the reply invalid, and an
/// optional one is read as absent (a rerun is never told "Suggestion: ..."). Pure.
enum Placeholder {
    /// Whether `text`, the value of `field`, is empty, only punctuation (`...`, `…`, `-`), or just a
    /// name for what belongs there (`string`, `feedback`, `<reason>`, `TODO`).
    static func matches(_ text: String, field: String) -> Bool {
        let bare = text.trimmingCharacters(in: .whitespacesAndNewlines.union(.punctuationCharacters).union(.symbols)).lowercased()
        if bare.isEmpty { return true }
        let name = field.replacingOccurrences(of: "_", with: " ")
        let names: Set<String> = [
            name, "your \(name)", "the \(name)", "string", "text", "a string", "todo", "tbd", "placeholder", "n/a", "none", "null",
        ]
        return names.contains(bare)
    }
}
