/// The typed reads of a YAML document's values, shared by every document agentd reads: plans and
/// script files (`PlanReader`) and the daemon's configuration file. Each read checks the value's type
/// and range and throws a `PlanError` naming the file, the line and column, and the field's dotted
/// path; a mapping's unknown keys are errors naming the allowed ones.
///
/// Scalars are typed by the YAML 1.2 core schema (so `yes`, `on` and `2024-01-01` are strings), and
/// quoted scalars are always strings. A read that wants a string does not accept an unquoted number.
public protocol YAMLReader {
    /// The name errors report (a path, or a label such as `<snapshot>`).
    var file: String { get }
}

/// A YAML node and where it sits: its dotted path and the mark of the key that holds it.
public struct YAMLField: Sendable {
    public let node: YAMLNode
    public let path: String
    /// Where the key holding this value is; nil for the root and list items.
    public let keyMark: YAMLMark?

    public var mark: YAMLMark? { node.mark }
    /// Where to point for what the value lacks: its key's line rather than its first child's.
    public var ownerMark: YAMLMark? { keyMark ?? node.mark }

    public func child(_ name: String, _ node: YAMLNode, keyMark: YAMLMark?) -> YAMLField {
        YAMLField(node: node, path: path.isEmpty ? name : "\(path).\(name)", keyMark: keyMark)
    }

    public func item(_ index: Int, _ node: YAMLNode) -> YAMLField {
        YAMLField(node: node, path: "\(path)[\(index)]", keyMark: nil)
    }
}

/// A mapping's entries in document order, keys as text.
public struct YAMLEntries: Sendable {
    public let field: YAMLField
    public let entries: [(name: String, key: YAMLNode, value: YAMLNode)]

    public func has(_ name: String) -> Bool { entries.contains { $0.name == name } }

    public func index(of name: String) -> Int? { entries.firstIndex { $0.name == name } }

    public subscript(name: String) -> YAMLField? {
        guard let entry = entries.first(where: { $0.name == name }) else { return nil }
        return field.child(name, entry.value, keyMark: entry.key.mark)
    }
}

extension YAMLReader {
    public func fail(_ mark: YAMLMark?, _ path: String, _ message: String) -> PlanError {
        PlanError(file: file, line: mark?.line, column: mark?.column, field: path, message: message)
    }

    /// The single document in `yaml`; a syntax error becomes a `PlanError` at its line.
    public func document(_ yaml: String, what: String) throws(PlanError) -> YAMLField {
        guard let root = try optionalDocument(yaml) else { throw PlanError(file: file, message: "the file is empty; expected \(what)") }
        return root
    }

    /// The single document in `yaml`, or nil when it has none (an empty file, or only comments).
    public func optionalDocument(_ yaml: String) throws(PlanError) -> YAMLField? {
        try YAMLDocument.parse(yaml, file: file).map { YAMLField(node: $0, path: "", keyMark: nil) }
    }

    /// The mapping's entries; with `allowed`, any other key is an error naming the allowed ones.
    public func mapping(_ field: YAMLField, allowed: [String]?, what: String) throws(PlanError) -> YAMLEntries {
        guard case let .mapping(mapping) = field.node else {
            throw fail(field.mark, field.path, "expected \(what) (a mapping), found \(found(field.node))")
        }
        var entries: [(name: String, key: YAMLNode, value: YAMLNode)] = []
        for (key, value) in mapping.pairs {
            guard case let .scalar(scalar) = key else {
                throw fail(key.mark, field.path, "a key must be a plain string, found \(found(key))")
            }
            entries.append((scalar.string, key, value))
        }
        let result = YAMLEntries(field: field, entries: entries)
        if let allowed { try check(result, allowed: allowed, what: what) }
        return result
    }

    public func check(_ entries: YAMLEntries, allowed: [String], what: String, note: String = "") throws(PlanError) {
        for entry in entries.entries where !allowed.contains(entry.name) {
            let path = entries.field.child(entry.name, entry.value, keyMark: nil).path
            throw fail(
                entry.key.mark, path,
                "unknown key '\(entry.name)' in \(what) (allowed: \(allowed.joined(separator: ", ")))\(note)")
        }
    }

    public func require(_ entries: YAMLEntries, _ name: String) throws(PlanError) -> YAMLField {
        guard let field = entries[name] else {
            let path = entries.field.child(name, entries.field.node, keyMark: nil).path
            throw fail(entries.field.ownerMark, path, "missing required key '\(name)'")
        }
        return field
    }

    public func list(_ field: YAMLField, what: String) throws(PlanError) -> [YAMLNode] {
        guard case let .sequence(sequence) = field.node else {
            throw fail(field.mark, field.path, "expected \(what), found \(found(field.node))")
        }
        return sequence.nodes
    }

    public func string(_ field: YAMLField) throws(PlanError) -> String {
        if case let .scalar(scalar) = field.node, case let .string(text) = try resolve(scalar, field) { return text }
        var message = "expected a string, found \(found(field.node))"
        if case let .scalar(scalar) = field.node, !scalar.string.isEmpty, try resolve(scalar, field) != .null {
            message += " (quote it: \"\(scalar.string)\")"
        }
        throw fail(field.mark, field.path, message)
    }

    public func nonEmptyString(_ field: YAMLField) throws(PlanError) -> String {
        let text = try string(field)
        guard !text.isEmpty else { throw fail(field.mark, field.path, "must not be empty") }
        return text
    }

    public func strings(_ field: YAMLField, what: String) throws(PlanError) -> [String] {
        var result: [String] = []
        for (index, node) in try list(field, what: what).enumerated() {
            result.append(try string(field.item(index, node)))
        }
        return result
    }

    public func nonEmptyStrings(_ field: YAMLField, what: String) throws(PlanError) -> [String] {
        var result: [String] = []
        for (index, node) in try list(field, what: what).enumerated() {
            result.append(try nonEmptyString(field.item(index, node)))
        }
        return result
    }

    /// The NAME of an environment variable: letters, digits and `_`, not starting with a digit.
    public func variableName(_ field: YAMLField) throws(PlanError) -> String {
        let name = try nonEmptyString(field)
        guard Self.isVariableName(name) else {
            throw fail(field.mark, field.path, "expected the NAME of an environment variable (letters, digits, _), found '\(name)'")
        }
        return name
    }

    public func bool(_ field: YAMLField) throws(PlanError) -> Bool {
        if case let .scalar(scalar) = field.node, case let .bool(value) = try resolve(scalar, field) { return value }
        throw fail(field.mark, field.path, "expected true or false, found \(found(field.node))")
    }

    public func int(_ field: YAMLField, in range: ClosedRange<Int>, expected: String = "an integer") throws(PlanError) -> Int {
        guard case let .scalar(scalar) = field.node, case let .integer(value) = try resolve(scalar, field) else {
            throw fail(field.mark, field.path, "expected \(expected), found \(found(field.node))")
        }
        guard let int = Int(exactly: value), range.contains(int) else {
            let bounds =
                range.upperBound == Int.max ? "at least \(range.lowerBound)" : "between \(range.lowerBound) and \(range.upperBound)"
            throw fail(field.mark, field.path, "must be \(bounds), found \(scalar.string)")
        }
        return int
    }

    public func number(_ field: YAMLField, in range: ClosedRange<Double>) throws(PlanError) -> Double {
        let value: Double
        switch field.node {
        case let .scalar(scalar):
            switch try resolve(scalar, field) {
            case let .integer(number), let .float(number): value = number
            default: throw fail(field.mark, field.path, "expected a number, found \(found(field.node))")
            }
        default: throw fail(field.mark, field.path, "expected a number, found \(found(field.node))")
        }
        guard range.contains(value) else {
            throw fail(
                field.mark, field.path,
                "must be between \(format(range.lowerBound)) and \(format(range.upperBound)), found \(format(value))")
        }
        return value
    }

    /// Seconds, from a number or a string with a unit: `250ms`, `30s`, `2m`, `1h` (fractions allowed).
    public func duration(_ field: YAMLField, allowZero: Bool) throws(PlanError) -> Double {
        let expected = "expected a duration: a number of seconds or a string such as 250ms, 30s, 2m or 1h"
        guard case let .scalar(scalar) = field.node else { throw fail(field.mark, field.path, "\(expected); found \(found(field.node))") }
        var seconds: Double?
        switch try resolve(scalar, field) {
        case let .integer(value), let .float(value): seconds = value
        case let .string(text):
            for (suffix, factor) in [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)] where text.hasSuffix(suffix) {
                let number = String(text.dropLast(suffix.count))
                if CoreSchema.isFloat(number), let value = Double(number) { seconds = value * factor }
                break
            }
        default: break
        }
        guard let seconds, seconds.isFinite else { throw fail(field.mark, field.path, "\(expected); found \(found(field.node))") }
        guard seconds > 0 || (allowZero && seconds == 0) else {
            throw fail(field.mark, field.path, allowZero ? "must not be negative" : "must be greater than zero")
        }
        return seconds
    }

    /// The deepest a reply may nest lists and mappings: well inside `YAMLBounds.maxDepth`, so that a
    /// plan's snapshot, which holds a script file's replies a few levels deeper than the file did, is
    /// A scalar's value per the YAML 1.2 core schema; quoted and block scalars are strings.
    func resolve(_ scalar: YAMLNode.Scalar, _ field: YAMLField) throws(PlanError) -> CoreSchema.Value {
        let text = scalar.string
        switch scalar.tag {
        case "":
            guard scalar.isPlain else { return .string(text) }
            return CoreSchema.resolve(text)
        case "!", "tag:yaml.org,2002:str":
            return .string(text)
        case let tag:
            let resolved = CoreSchema.resolve(text)
            switch (tag, resolved) {
            case ("tag:yaml.org,2002:null", .null), ("tag:yaml.org,2002:bool", .bool),
                ("tag:yaml.org,2002:int", .integer), ("tag:yaml.org,2002:float", .float):
                return resolved
            case let ("tag:yaml.org,2002:float", .integer(value)):
                return .float(value)
            case ("tag:yaml.org,2002:null", _), ("tag:yaml.org,2002:bool", _), ("tag:yaml.org,2002:int", _),
                ("tag:yaml.org,2002:float", _):
                throw fail(scalar.mark, field.path, "'\(text)' is not a valid \(tag.split(separator: ":").last!)")
            default:
                throw fail(scalar.mark, field.path, "unsupported tag '\(tag)'")
            }
        }
    }

    /// What a node is, for "expected ..., found ..." messages.
    public func found(_ node: YAMLNode) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case let .scalar(scalar):
            let value: CoreSchema.Value
            switch scalar.tag {
            case "": value = scalar.isPlain ? CoreSchema.resolve(scalar.string) : .string(scalar.string)
            case "!", "tag:yaml.org,2002:str": value = .string(scalar.string)
            default: value = CoreSchema.resolve(scalar.string)
            }
            switch value {
            case .null: return "null"
            case .bool: return "boolean \(scalar.string)"
            case .integer: return "integer \(scalar.string)"
            case .float: return "number \(scalar.string)"
            case let .string(text):
                let short = text.count > 40 ? String(text.prefix(40)) + "..." : text
                return "string '\(short)'"
            }
        }
    }

    public func format(_ value: Double) -> String {
        Int(exactly: value).map(String.init) ?? String(value)
    }
    /// Letters, digits and `_`, not starting with a digit.
    public static func isVariableName(_ name: String) -> Bool {
        guard let first = name.first, !first.isNumber else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }
}
