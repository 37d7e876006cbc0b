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
}
