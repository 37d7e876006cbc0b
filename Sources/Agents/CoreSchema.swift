/// Scalar resolution of the YAML 1.2 core schema, which Yams' default resolver (YAML 1.1 rules:
/// `yes`, `on`, timestamps) does not implement.
enum CoreSchema {
    /// A resolved scalar. Integers are kept as `Double`, as JSON numbers are.
    enum Value: Equatable {
        case null
        case bool(Bool)
        case integer(Double)
        case float(Double)
        case string(String)
    }

    static func resolve(_ text: String) -> Value {
        switch text {
        case "", "~", "null", "Null", "NULL": return .null
        case "true", "True", "TRUE": return .bool(true)
        case "false", "False", "FALSE": return .bool(false)
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .float(.infinity)
        case "-.inf", "-.Inf", "-.INF": return .float(-.infinity)
        case ".nan", ".NaN", ".NAN": return .float(.nan)
        default: break
        }
        if let value = integer(text) { return .integer(value) }
        if isFloat(text), let value = Double(text) { return .float(value) }
        return .string(text)
    }

    /// `[-+]?[0-9]+`, `0o[0-7]+` or `0x[0-9a-fA-F]+`.
    static func integer(_ text: String) -> Double? {
        if text.hasPrefix("0o"), text.count > 2, let value = Int(text.dropFirst(2), radix: 8) { return Double(value) }
        if text.hasPrefix("0x"), text.count > 2, let value = Int(text.dropFirst(2), radix: 16) { return Double(value) }
        var digits = Substring(text)
        if digits.first == "-" || digits.first == "+" { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Double(text.hasPrefix("+") ? String(text.dropFirst()) : text)
    }

    /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
    static func isFloat(_ text: String) -> Bool {
        var bytes = Substring(text).utf8[...]
        func digits() -> Int {
            var count = 0
            while let byte = bytes.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                bytes = bytes.dropFirst()
                count += 1
            }
            return count
        }
        func take(_ characters: String) -> Bool {
            guard let byte = bytes.first, characters.utf8.contains(byte) else { return false }
            bytes = bytes.dropFirst()
            return true
        }
        _ = take("+-")
        if take(".") {
            guard digits() > 0 else { return false }
        } else {
            guard digits() > 0 else { return false }
            if take(".") { _ = digits() }
        }
        if take("eE") {
            _ = take("+-")
            guard digits() > 0 else { return false }
        }
        return bytes.isEmpty
    }
}
