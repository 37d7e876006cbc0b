/// What a string costs once encoded as a JSON string (`JSON.writeString`), and the longest prefix of
/// raw bytes that fits a budget of encoded bytes.
///
/// Budgets on recorded text count encoded bytes because that is what is stored, hashed and sent: a
/// NUL byte is one byte of output but six (`\u0000`) in every event and request that carries it.
/// Pure functions; safe from any thread.
extension JSON {
    /// The bytes `text` takes inside a JSON string as `encoded` writes it, the quotes excluded.
    public static func escapedCount(of text: String) -> Int {
        var text = text
        return text.withUTF8 { bytes in
            var count = 0
            for byte in bytes { count += escapedCost(byte) }
            return count
        }
    }

    /// `text` as it appears inside a JSON string (`encoded` without the quotes).
    public static func escaped(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        writeString(text, to: &out)
        return Array(out.dropFirst().dropLast())
    }

    /// The longest prefix of `bytes`, decoded as UTF-8 (an invalid sequence becomes U+FFFD, as in
    /// `String(decoding:as:)`), whose escaped form takes at most `budget` bytes; a multi-byte
    /// character is never split. Returns the text, its escaped size, and whether all of `bytes` fit.
    /// Never builds the escaped form: memory stays at the size of the prefix.
    public static func escapedPrefix(of bytes: [UInt8], within budget: Int) -> (text: String, escapedCount: Int, complete: Bool) {
        var used = 0
        var cut = 0
        var parser = Unicode.UTF8.ForwardParser()
        var input = bytes.makeIterator()
        scan: while true {
            let cost: Int
            let length: Int
            switch parser.parseScalar(from: &input) {
            case let .valid(encoded):
                length = encoded.count
                // A scalar of one byte may need escaping; longer ones are copied as they are.
                cost = length == 1 ? escapedCost(encoded.first!) : length
            case let .error(errorLength):
                // Decoded as U+FFFD: three bytes, no escape.
                length = errorLength
                cost = 3
            case .emptyInput:
                break scan
            }
            guard used + cost <= budget else { break }
            used += cost
            cut += length
        }
        if cut == bytes.count { return (String(decoding: bytes, as: UTF8.self), used, true) }
        return (String(decoding: bytes[..<cut], as: UTF8.self), used, false)
    }

    /// Encoded bytes of one UTF-8 code unit: 2 for `"`, `\`, newline, CR and tab, 6 for the other
    /// control bytes (`\u00XX`), 1 otherwise. Mirrors `writeString`.
    @inline(__always)
    static func escapedCost(_ byte: UInt8) -> Int {
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x0A, 0x0D, 0x09: return 2
        case 0..<0x20: return 6
        default: return 1
        }
    }
}
