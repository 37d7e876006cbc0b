import Store

/// A request's params object with typed accessors whose errors name the field; the `MethodParams`
/// types decode through it. Pure value; any thread.
public struct Params: Sendable {
    public let raw: JSON

    public init(_ raw: JSON) {
        self.raw = raw
    }

    public func string(_ key: String) throws(RPCError) -> String? {
        guard let value = raw[key], !value.isNull else { return nil }
        guard let s = value.stringValue else { throw .invalidParams("'\(key)' must be a string, got \(value.typeName)") }
        return s
    }

    public func int(_ key: String, default fallback: Int, range: ClosedRange<Int>) throws(RPCError) -> Int {
        guard let value = raw[key], !value.isNull else { return fallback }
        guard let n = value.intValue, range.contains(n) else {
            throw .invalidParams("'\(key)' must be an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return n
    }

    public func bool(_ key: String, default fallback: Bool) throws(RPCError) -> Bool {
        guard let value = raw[key], !value.isNull else { return fallback }
        guard let b = value.boolValue else { throw .invalidParams("'\(key)' must be true or false, got \(value.typeName)") }
        return b
    }

    public func jobID() throws(RPCError) -> String {
        guard let id = try string("id"), !id.isEmpty else { throw .invalidParams("'id' (the job id) is required") }
        return id
    }

    /// The first member name or string value, at any depth, that holds U+0000, as a field path
    /// (`goal`, `inputs.dir`, `statuses[1]`), or nil. Every method refuses such params: the kernel, C
    /// libraries and commands read a string only up to its NUL, so what agentd acted on would not be
    /// what was sent (and recorded).
    public var fieldWithNUL: String? { Self.nul(in: raw, at: "") }

    private static func nul(in value: JSON, at path: String) -> String? {
        switch value {
        case let .string(s): return s.utf8.contains(0) ? path : nil
        case let .array(items):
            for (i, item) in items.enumerated() {
                if let found = nul(in: item, at: "\(path)[\(i)]") { return found }
            }
            return nil
        case let .object(members):
            for (key, member) in members {
                let field = path.isEmpty ? key : "\(path).\(key)"
                if key.utf8.contains(0) { return field }
                if let found = nul(in: member, at: field) { return found }
            }
            return nil
        case .null, .bool, .number: return nil
        }
    }
}
