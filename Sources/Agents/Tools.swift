import Store

/// A tool the actor may call, by the name a role's `tools:` list uses.
///
/// The definitions are what the model is told (OpenAI's `tools` entries: a function with a name, a
/// description and JSON-Schema parameters); the daemon runs them (`ToolBox` in Orchestrator) in the
/// job's workspace. Arguments are an argv or workspace-relative paths, never shell text.
public enum ToolName: String, CaseIterable, Sendable {
    case runCommand = "run_command"
    case readFile = "read_file"
    case writeFile = "write_file"

    /// The known names, for error messages.
    public static var known: String { allCases.map(\.rawValue).joined(separator: ", ") }

    public var description: String {
        switch self {
        case .runCommand:
            return "Run a program in the workspace (no shell) and get its exit status, stdout and stderr."
        case .readFile:
            return "Read a text file in the workspace."
        case .writeFile:
            return "Write a text file in the workspace, creating parent directories; replaces an existing file."
        }
    }

    /// The JSON Schema of the arguments.
    public var parameters: JSON {
        func string(_ text: String) -> JSON { .object([("type", "string"), ("description", .string(text))]) }
        let properties: [(String, JSON)]
        switch self {
        case .runCommand:
            properties = [
                (
                    "argv",
                    .object([
                        ("type", "array"), ("items", .object([("type", "string")])), ("minItems", 1),
                        ("description", "The program and its arguments, e.g. [\"ls\", \"-l\"]."),
                    ])
                )
            ]
        case .readFile:
            properties = [("path", string("A path relative to the workspace."))]
        case .writeFile:
            properties = [("path", string("A path relative to the workspace.")), ("content", string("The file's full text."))]
        }
        return .object([
            ("type", "object"), ("properties", .object(properties)),
            ("required", .array(properties.map { JSON.string($0.0) })), ("additionalProperties", false),
        ])
    }

    /// The entry of a request's `tools` list.
    public var definition: JSON {
        .object([
            ("type", "function"),
            (
                "function",
                .object([("name", .string(rawValue)), ("description", .string(description)), ("parameters", parameters)])
            ),
        ])
    }
}

/// One tool call a model asked for. `arguments` is kept exactly as the model wrote it (a JSON text
/// that may be malformed): the tool's runner reports a bad one to the model as the tool's result.
public struct ToolCall: Sendable, Equatable {
    /// The model's id for the call; tool results refer to it (`tool_call_id`).
    public var id: String
    public var name: String
    public var arguments: String

    public init(id: String, name: String, arguments: String) {
        self.id = id
        self.name = name
        self.arguments = arguments
    }

    /// OpenAI's shape: `{"id", "type": "function", "function": {"name", "arguments"}}`.
    public var json: JSON {
        .object([
            ("id", .string(id)), ("type", "function"),
            ("function", .object([("name", .string(name)), ("arguments", .string(arguments))])),
        ])
    }

    /// Reads a list of tool calls in OpenAI's shape or the short one scripts and command models may
    /// use, `{"name", "arguments", "id"?}`, where `arguments` is a JSON text or any JSON value (then
    /// encoded). A missing id becomes `call_INDEX`. Nil when `value` is not such a list.
    public static func list(from value: JSON) -> [ToolCall]? {
        guard let items = value.arrayValue else { return nil }
        var calls: [ToolCall] = []
        for (index, item) in items.enumerated() {
            let function = item["function"] ?? item
            guard let name = function["name"]?.stringValue, !name.isEmpty else { return nil }
            let arguments: String
            switch function["arguments"] {
            case let .string(text)?: arguments = text
            case nil, .null?: arguments = "{}"
            case let value?: arguments = value.encoded
            }
            let id = item["id"]?.stringValue.flatMap { $0.isEmpty ? nil : $0 } ?? "call_\(index)"
            calls.append(ToolCall(id: id, name: name, arguments: arguments))
        }
        return calls
    }
}
