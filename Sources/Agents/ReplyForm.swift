import Store

/// The fields a role's reply fills in under `.strict` rules, each with its meaning: the one source
/// of the JSON Schema a reply is constrained to and of the prompt's description of it. A prompt
/// states what each field means instead of showing an example, because small models copy an
/// example's placeholders (`"reason": "..."`) into their answers. Pure value; any thread.
public struct ReplyForm: Sendable {
    public struct Field: Sendable {
        public var name: String
        /// The JSON Schema of the value, without its description.
        public var schema: JSON
        /// How the prompt names the value's type: `"pass" or "fail"`, `a number from 0 to 1`.
        public var type: String
        public var required: Bool
        public var meaning: String
    }

    public var fields: [Field]

    /// The JSON Schema of the reply: an object of the fields, each with its meaning as `description`.
    public var schema: JSON {
        var properties: [(String, JSON)] = []
        for field in fields {
            guard case var .object(members) = field.schema else { continue }
            members.append(("description", .string(field.meaning)))
            properties.append((field.name, .object(members)))
        }
        return .object([
            ("type", "object"), ("required", .array(fields.filter(\.required).map { .string($0.name) })),
            ("properties", .object(properties)),
        ])
    }

    /// The prompt's instruction: one line per field, its type, whether it is required, its meaning.
    public var instruction: String {
        var text = "Answer with one JSON object with these fields:"
        for field in fields {
            text += "\n- \(field.name) (\(field.required ? "required" : "optional"), \(field.type)): \(field.meaning)"
        }
        return text
    }

    private static func text(_ name: String, required: Bool, _ meaning: String) -> Field {
        Field(name: name, schema: ["type": "string"], type: "text", required: required, meaning: meaning)
    }

    private static func fraction(_ name: String, required: Bool, _ meaning: String) -> Field {
        Field(
            name: name, schema: ["type": "number", "minimum": 0, "maximum": 1], type: "a number from 0 to 1", required: required,
            meaning: meaning)
    }

    /// A critic's verdict; a pass must score at least `passScore`. `evidence` (a critic with tools)
    /// adds the list of tool calls the verdict relies on.
    public static func verdict(passScore: Double, evidence: Bool = false) -> ReplyForm {
        var form = ReplyForm(fields: [
            Field(
                name: "verdict", schema: ["type": "string", "enum": ["pass", "fail"]], type: "\"pass\" or \"fail\"", required: true,
                meaning: "pass when the output does everything the step asks, fail when it does not"),
            fraction(
                "score", required: true,
                "how well the output does the step: 0 not at all, 1 completely; a pass scores at least \(JSON.number(passScore).encoded), a fail below 1"
            ),
            text("feedback", required: true, "what is right or wrong in this output, specifically enough that a rerun can fix it"),
            text("suggestion", required: false, "the change that would make a failing output pass"),
            text("first_error", required: false, "the first wrong part of the output, quoted"),
            Field(
                name: "failure_modes", schema: ["type": "array", "items": ["type": "string"]], type: "a list of short texts",
                required: false, meaning: "short names of the kinds of failure, such as too long or missing a required term"),
            fraction("confidence", required: false, "how sure you are of this verdict"),
            fraction(
                "feasibility", required: false,
                "how likely a rerun of this step as it is stated can succeed: near 0 when the step itself is wrong or impossible and the work needs a new plan"
            ),
        ])
        if evidence {
            form.fields.append(
                Field(
                    name: "evidence", schema: ["type": "array", "items": ["type": "string"]], type: "a list of texts", required: false,
                    meaning: "the ids of your tool calls whose results this verdict relies on, each exactly as its tool_call_id"))
        }
        return form
    }

    /// A critic's verdict on a tool call proposed at a gate: a verdict, plus the arguments to run
    /// instead when a change makes the call acceptable.
    public static func gateVerdict(passScore: Double) -> ReplyForm {
        var form = verdict(passScore: passScore)
        form.fields.append(
            text(
                "arguments", required: false,
                "with pass: the call's arguments to run instead, as a JSON object, when the call is acceptable only changed; the changed call is reviewed again"
            ))
        return form
    }

    /// A planner's plan.
    public static let plan = ReplyForm(fields: [
        Field(
            name: "steps", schema: ["type": "array", "minItems": 1, "items": ["type": "string"]], type: "a list of texts", required: true,
            meaning: "the steps of the work in order, each a concrete instruction one model call can carry out")
    ])

    /// A model verifier's decision.
    public static let verification = ReplyForm(fields: [
        Field(
            name: "verified", schema: ["type": "boolean"], type: "true or false", required: true,
            meaning: "true when the results achieve the goal, false when they do not"),
        text("reason", required: false, "why, naming what in the results meets or misses the goal"),
    ])
}
