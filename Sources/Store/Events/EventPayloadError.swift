/// A recorded event's payload that does not have the shape its kind's typed value requires.
///
/// The description names the kind and the field, never the payload's content (it may hold prompts,
/// tool output or secrets). Pure; safe from any thread.
public struct EventPayloadError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Sendable, Equatable {
        case missing
        case wrongType(expected: String, found: String)
        case wrongKind(found: String)
    }

    public let kind: EventKind
    /// The member's dotted path in the payload; empty for the payload itself.
    public let field: String
    private let code: Code

    static func notAnObject(_ kind: EventKind, found: JSON) -> EventPayloadError {
        EventPayloadError(kind: kind, field: "", code: .wrongType(expected: "an object", found: found.typeName))
    }

    static func wrongKind(_ kind: EventKind, found: String) -> EventPayloadError {
        EventPayloadError(kind: kind, field: "", code: .wrongKind(found: found))
    }

    static func missing(_ kind: EventKind, _ field: String) -> EventPayloadError {
        EventPayloadError(kind: kind, field: field, code: .missing)
    }

    static func wrongType(_ kind: EventKind, _ field: String, expected: String, found: JSON) -> EventPayloadError {
        EventPayloadError(kind: kind, field: field, code: .wrongType(expected: expected, found: found.typeName))
    }

    public var description: String {
        let subject = field.isEmpty ? "payload" : "payload member \(field)"
        switch code {
        case .missing: return "a \(kind.rawValue) event's \(subject) is missing"
        case let .wrongKind(found): return "a \(found) event was read as a \(kind.rawValue) event"
        case let .wrongType(expected, found):
            let article = found == "null" ? "" : "aeiou".contains(found.first ?? " ") ? "an " : "a "
            return "a \(kind.rawValue) event's \(subject) is \(article)\(found), not \(expected)"
        }
    }
}

/// Reads one event payload's members for a typed event's decoding, throwing `EventPayloadError` on
/// a wrong shape. An absent member and a JSON null are the same to an optional field. Pure.
struct PayloadReader {
    let kind: EventKind
    private let payload: JSON
    private let prefix: String

    init(_ kind: EventKind, _ payload: JSON, prefix: String = "") throws(EventPayloadError) {
        guard case .object = payload else { throw .notAnObject(kind, found: payload) }
        self.kind = kind
        self.payload = payload
        self.prefix = prefix
    }

    /// A member that may be absent, as it is.
    func json(_ key: String) -> JSON? {
        guard let value = payload[key], !value.isNull else { return nil }
        return value
    }

    /// A member that must be there, of any type (null included).
    func present(_ key: String) throws(EventPayloadError) -> JSON {
        guard let value = payload[key] else { throw .missing(kind, prefix + key) }
        return value
    }

    func optional<T>(_ key: String, _ expected: String, _ read: (JSON) -> T?) throws(EventPayloadError) -> T? {
        guard let value = json(key) else { return nil }
        guard let typed = read(value) else { throw .wrongType(kind, prefix + key, expected: expected, found: value) }
        return typed
    }

    func required<T>(_ key: String, _ expected: String, _ read: (JSON) -> T?) throws(EventPayloadError) -> T {
        guard let typed = try optional(key, expected, read) else { throw .missing(kind, prefix + key) }
        return typed
    }

    func string(_ key: String) throws(EventPayloadError) -> String { try required(key, "a string", \.stringValue) }
    func optionalString(_ key: String) throws(EventPayloadError) -> String? { try optional(key, "a string", \.stringValue) }
    func double(_ key: String) throws(EventPayloadError) -> Double { try required(key, "a number", \.doubleValue) }
    func optionalDouble(_ key: String) throws(EventPayloadError) -> Double? { try optional(key, "a number", \.doubleValue) }
    func int(_ key: String) throws(EventPayloadError) -> Int { try required(key, "an integer", \.intValue) }
    func optionalInt(_ key: String) throws(EventPayloadError) -> Int? { try optional(key, "an integer", \.intValue) }
    func bool(_ key: String) throws(EventPayloadError) -> Bool { try required(key, "a boolean", \.boolValue) }
    func optionalBool(_ key: String) throws(EventPayloadError) -> Bool? { try optional(key, "a boolean", \.boolValue) }

    func strings(_ key: String) throws(EventPayloadError) -> [String] {
        try required(key, "an array of strings", Self.strings)
    }
    func optionalStrings(_ key: String) throws(EventPayloadError) -> [String]? {
        try optional(key, "an array of strings", Self.strings)
    }
    func ints(_ key: String) throws(EventPayloadError) -> [Int] {
        try required(key, "an array of integers", Self.ints)
    }
    private static func ints(_ value: JSON) -> [Int]? {
        guard let array = value.arrayValue else { return nil }
        let ints = array.compactMap(\.intValue)
        return ints.count == array.count ? ints : nil
    }
    private static func strings(_ value: JSON) -> [String]? {
        guard let array = value.arrayValue else { return nil }
        let strings = array.compactMap(\.stringValue)
        return strings.count == array.count ? strings : nil
    }

    /// A nested object member's reader.
    func optionalObject(_ key: String) throws(EventPayloadError) -> PayloadReader? {
        guard let value = json(key) else { return nil }
        guard case .object = value else { throw .wrongType(kind, prefix + key, expected: "an object", found: value) }
        return try PayloadReader(kind, value, prefix: prefix + key + ".")
    }
}
