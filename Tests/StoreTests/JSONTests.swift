import XCTest

@testable import Store

final class JSONTests: XCTestCase {
    // MARK: Helpers

    private func parse(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> JSON? {
        do {
            return try JSON.parse(text)
        } catch {
            XCTFail("\(text.prefix(60)) did not parse: \(error)", file: file, line: line)
            return nil
        }
    }

    /// The error `text` is rejected with; fails the test when it parses.
    private func rejection(_ text: String, maxDepth: Int = 256, file: StaticString = #filePath, line: UInt = #line) -> JSONParseError? {
        do {
            let value = try JSON.parse(text, maxDepth: maxDepth)
            XCTFail("\(text.prefix(60)) parsed as \(value.encoded.prefix(60)); expected an error", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    private func assertRoundTrip(_ value: JSON, file: StaticString = #filePath, line: UInt = #line) {
        let text = value.encoded
        guard let back = parse(text, file: file, line: line) else { return }
        XCTAssertEqual(back, value, "round trip through \(text)", file: file, line: line)
        XCTAssertEqual(back.encoded, text, "re-encoding is byte-for-byte stable", file: file, line: line)
    }

    // MARK: Encoding

    func testEncodesCompactlyInStoredKeyOrder() {
        let value: JSON = ["z": 1, "a": [true, false, nil], "m": ["nested": "x"], "n": 1.5]
        XCTAssertEqual(value.encoded, #"{"z":1,"a":[true,false,null],"m":{"nested":"x"},"n":1.5}"#)
    }

    func testEscapesQuotesBackslashesAndControlCharacters() {
        let value = JSON.string("q\"b\\n\nr\rt\tnul\u{0}bell\u{7}us\u{1F}del\u{7F}")
        XCTAssertEqual(value.encoded, #""q\"b\\n\nr\rt\tnul\u0000bell\u0007us\u001fdel"# + "\u{7F}\"")
        assertRoundTrip(value)
    }

    func testNonASCIIIsWrittenAsUTF8() {
        let value = JSON.string("héllo — 日本 😀")
        XCTAssertEqual(value.encoded, "\"héllo — 日本 😀\"")
        assertRoundTrip(value)
    }

    func testIntegralNumbersEncodeWithoutAFraction() {
        XCTAssertEqual(JSON.number(42).encoded, "42")
        XCTAssertEqual(JSON.number(-7).encoded, "-7")
        XCTAssertEqual(JSON.number(0).encoded, "0")
        XCTAssertEqual(JSON.number(-0.0).encoded, "0")
        XCTAssertEqual(JSON.int(8_999_999_999_999_999).encoded, "8999999999999999")
        XCTAssertEqual(JSON.number(1.5).encoded, "1.5")
        XCTAssertEqual(JSON.number(-0.25).encoded, "-0.25")
    }

    func testNonFiniteNumbersEncodeAsNull() {
        // JSON has no NaN or infinity.
        XCTAssertEqual(JSON.number(.nan).encoded, "null")
        XCTAssertEqual(JSON.number(.infinity).encoded, "null")
        XCTAssertEqual(JSON.number(-.infinity).encoded, "null")
    }

    // MARK: Round trips

    func testRoundTripsEveryKindOfValue() {
        assertRoundTrip(.null)
        assertRoundTrip(true)
        assertRoundTrip(false)
        assertRoundTrip("")
        assertRoundTrip([])
        assertRoundTrip(.object([]))
        assertRoundTrip([
            "unicode": "ünïcødé ✓ 𝄞 😀",
            "escapes": "\"\\/\u{8}\u{C}\n\r\t",
            "controls": .string((0..<32).map { String(UnicodeScalar(UInt8($0))) }.joined()),
            "numbers": [
                0, -1, 1.25, -1.25e-10, 6.02214076e23, 1e300, .number(.leastNonzeroMagnitude), .number(.greatestFiniteMagnitude), 0.1,
            ],
            "big": [9_007_199_254_740_992, -9_007_199_254_740_992, 1e16, 1.2345678901234567e19],
            "nested": [["a": [["b": [[[]]]]]], ["x": .null]],
        ])
    }

    func testRoundTripsDeepButAllowedNesting() {
        var value: JSON = "leaf"
        for i in 0..<200 { value = i.isMultiple(of: 2) ? [value] : ["k": value] }
        assertRoundTrip(value)
    }

    // MARK: Parsing

    func testParsesEscapes() {
        XCTAssertEqual(parse(#""\"\\\/\b\f\n\r\t""#), .string("\"\\/\u{8}\u{C}\n\r\t"))
        XCTAssertEqual(parse(#""\u0041\u00e9\u65E5\u0000""#), .string("Aé日\u{0}"))
    }

    func testParsesSurrogatePairs() {
        XCTAssertEqual(parse(#""\ud83d\ude00""#), .string("😀"))
        XCTAssertEqual(parse(#""\uD834\uDD1E!""#), .string("𝄞!"))
        XCTAssertEqual(parse(#""a\ud83d\ude00b\u00e9""#), .string("a😀bé"))
    }

    func testParsesNumbers() {
        XCTAssertEqual(parse("0"), .number(0))
        XCTAssertEqual(parse("-0"), .number(0))
        XCTAssertEqual(parse("-12"), .number(-12))
        XCTAssertEqual(parse("3.25"), .number(3.25))
        XCTAssertEqual(parse("1e3"), .number(1000))
        XCTAssertEqual(parse("1E+3"), .number(1000))
        XCTAssertEqual(parse("-2.5e-3"), .number(-0.0025))
        XCTAssertEqual(parse("123456789012"), .number(123_456_789_012))
        XCTAssertEqual(parse("123456789012")?.intValue, 123_456_789_012)
    }

    func testLargeIntegersBecomeDoubles() {
        // Numbers are Doubles: integers past 2^53 keep only 53 bits, and `intValue` refuses them.
        XCTAssertEqual(parse("9007199254740993"), .number(9_007_199_254_740_992))
        XCTAssertEqual(parse("12345678901234567890"), .number(1.2345678901234567e19))
        XCTAssertNil(parse("12345678901234567890")?.intValue)
    }

    func testNumberOutOfDoubleRangeIsRejected() {
        // Accepting 1e400 as infinity would re-encode it as `null`: a stored payload would change.
        XCTAssertNotNil(rejection("1e400"))
        XCTAssertNotNil(rejection("[-1e400]"))
    }

    func testKeepsKeyOrderAndDuplicateKeys() {
        guard let value = parse(#"{"b":1, "a":2, "c":{"y":1,"x":2}, "a":3}"#) else { return }
        XCTAssertEqual(value.objectValue?.map(\.0), ["b", "a", "c", "a"])
        XCTAssertEqual(value["c"]?.objectValue?.map(\.0), ["y", "x"])
        // The first of duplicate keys is the one read.
        XCTAssertEqual(value["a"], 2)
        XCTAssertEqual(value.encoded, #"{"b":1,"a":2,"c":{"y":1,"x":2},"a":3}"#)
    }

    func testObjectEqualityDependsOnKeyOrder() {
        XCTAssertNotEqual(JSON.object([("a", 1), ("b", 2)]), JSON.object([("b", 2), ("a", 1)]))
        XCTAssertEqual(JSON.object([("a", 1), ("b", 2)]), JSON.object([("a", 1), ("b", 2)]))
    }

    func testAcceptsInsignificantWhitespace() {
        XCTAssertEqual(parse(" \t\r\n{ \"a\" : [ 1 , 2 ] }\n "), ["a": [1, 2]])
    }

    func testParsesFromBytes() throws {
        XCTAssertEqual(try JSON.parse(Array(#"{"k":"v"}"#.utf8)), ["k": "v"])
        XCTAssertThrowsError(try JSON.parse([UInt8]()))
    }

    func testInvalidUTF8InsideAStringIsReplacedNotRejected() throws {
        // Documents the behaviour: the parser decodes string bytes leniently.
        let bytes: [UInt8] = [0x22, 0x61, 0xFF, 0x62, 0x22]
        XCTAssertEqual(try JSON.parse(bytes), .string("a\u{FFFD}b"))
    }

    // MARK: Rejections

    func testRejectsEmptyInput() {
        XCTAssertEqual(rejection(""), JSONParseError(message: "unexpected end of input", offset: 0))
        XCTAssertEqual(rejection("  \n"), JSONParseError(message: "unexpected end of input", offset: 3))
    }

    func testRejectsTrailingGarbage() {
        XCTAssertEqual(rejection("[1,2] x"), JSONParseError(message: "unexpected trailing characters", offset: 6))
        XCTAssertEqual(rejection(#"{"a":1}{"b":2}"#)?.offset, 7)
        XCTAssertEqual(rejection("truex")?.offset, 4)
        XCTAssertEqual(rejection("1 2")?.offset, 2)
    }

    func testRejectsUnterminatedStrings() {
        XCTAssertEqual(rejection(#""abc"#), JSONParseError(message: "unterminated string", offset: 4))
        XCTAssertEqual(rejection(#"["a\n"#)?.message, "unterminated string")
        XCTAssertEqual(rejection(#"{"key"#)?.message, "unterminated string")
        XCTAssertNotNil(rejection(#""ends in a backslash\"#))
    }

    func testRejectsBadEscapes() {
        let error = rejection(#""ab\x""#)
        XCTAssertEqual(error?.message, "invalid escape")
        // The offset points at the escape: the backslash (3) or the letter after it (4).
        XCTAssertTrue((3...4).contains(error?.offset ?? -1), "offset \(error?.offset ?? -1)")
        XCTAssertEqual(rejection(#""\u12G4""#)?.message, "invalid hex digit")
        XCTAssertEqual(rejection(#""\u12"abc""#)?.message, "invalid hex digit")
        XCTAssertEqual(rejection(#""\u1"#)?.message, "unexpected end of input")
        XCTAssertEqual(rejection(#""\U0041""#)?.message, "invalid escape")
    }

    func testRejectsLoneSurrogates() {
        XCTAssertEqual(rejection(#""\ud800""#), JSONParseError(message: "unpaired surrogate", offset: 7))
        XCTAssertEqual(rejection(#""\ud800x""#)?.message, "unpaired surrogate")
        XCTAssertEqual(rejection(#""\udc00""#)?.message, "unpaired surrogate")
        XCTAssertEqual(rejection(#""\ude00\ud83d""#)?.message, "unpaired surrogate")
        XCTAssertEqual(rejection(#""\ud83d\u0041""#)?.message, "invalid low surrogate")
        XCTAssertEqual(rejection(#""\ud83d\ud83d""#)?.message, "invalid low surrogate")
    }

    func testRejectsRawControlCharactersInStrings() {
        XCTAssertEqual(rejection("\"a\nb\""), JSONParseError(message: "control character in string", offset: 2))
        XCTAssertEqual(rejection("\"a\\n\tb\"")?.message, "control character in string")
        XCTAssertEqual(rejection("\"\u{0}\"")?.offset, 1)
    }

    func testLeadingZerosAreRejected() {
        // "01" reads the number 0, then finds a trailing "1".
        XCTAssertEqual(rejection("01"), JSONParseError(message: "unexpected trailing characters", offset: 1))
        XCTAssertEqual(rejection("-01")?.offset, 2)
        XCTAssertEqual(rejection("[00]"), JSONParseError(message: "expected ',' or ']'", offset: 2))
        XCTAssertEqual(parse("0.01"), .number(0.01))
        XCTAssertEqual(parse("[0,10]"), [0, 10])
    }

    func testRejectsMalformedNumbers() {
        for text in ["-", "1.", "1.e3", "1e", "1e+", "-a", "--1"] {
            XCTAssertEqual(rejection(text)?.message, "invalid number", text)
        }
        for text in [".5", "+1", "NaN", "Infinity", "0x10"] {
            XCTAssertNotNil(rejection(text), text)
        }
    }

    func testRejectsMalformedStructure() {
        XCTAssertEqual(rejection("[1,]"), JSONParseError(message: "unexpected character ']'", offset: 3))
        XCTAssertEqual(rejection(#"{"a":1,}"#), JSONParseError(message: "expected a string key", offset: 7))
        XCTAssertEqual(rejection(#"{"a" 1}"#), JSONParseError(message: "expected ':'", offset: 5))
        XCTAssertEqual(rejection(#"{a:1}"#), JSONParseError(message: "expected a string key", offset: 1))
        XCTAssertEqual(rejection("[1 2]"), JSONParseError(message: "expected ',' or ']'", offset: 3))
        XCTAssertEqual(rejection(#"{"a":1 "b":2}"#), JSONParseError(message: "expected ',' or '}'", offset: 7))
        XCTAssertEqual(rejection("[1,2"), JSONParseError(message: "unexpected end of input", offset: 4))
        XCTAssertEqual(rejection("tru"), JSONParseError(message: "unexpected end of input", offset: 0))
        XCTAssertEqual(rejection("nul1"), JSONParseError(message: "invalid literal", offset: 0))
        XCTAssertEqual(rejection("'a'")?.message, "unexpected character '''")
    }

    func testErrorDescriptionNamesTheOffset() {
        XCTAssertEqual(rejection("[1,2] x")?.description, "unexpected trailing characters at byte 6")
    }

    // MARK: Depth limit

    func testNestingUpToTheLimitIsAccepted() {
        let text = String(repeating: "[", count: 256) + String(repeating: "]", count: 256)
        XCTAssertNotNil(parse(text))
    }

    func testNestingPastTheLimitIsAnErrorNotACrash() {
        let text = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        XCTAssertEqual(rejection(text), JSONParseError(message: "nesting deeper than 256", offset: 256))
        let objects = String(repeating: #"{"a":"#, count: 10_000) + "1" + String(repeating: "}", count: 10_000)
        XCTAssertEqual(rejection(objects)?.message, "nesting deeper than 256")
        let unterminated = String(repeating: "[", count: 1_000_000)
        XCTAssertEqual(rejection(unterminated)?.message, "nesting deeper than 256")
    }

    func testDepthLimitIsConfigurable() {
        XCTAssertNotNil(rejection("[[[]]]", maxDepth: 2))
        XCTAssertEqual(try JSON.parse("[[]]", maxDepth: 2), [[]])
    }

    // MARK: Accessors

    func testAccessors() {
        let value: JSON = ["s": "x", "n": 2.5, "i": 3, "b": true, "a": [1], "o": ["k": nil], "z": nil]
        XCTAssertEqual(value["s"]?.stringValue, "x")
        XCTAssertEqual(value["n"]?.doubleValue, 2.5)
        XCTAssertNil(value["n"]?.intValue)
        XCTAssertEqual(value["i"]?.intValue, 3)
        XCTAssertEqual(value["b"]?.boolValue, true)
        XCTAssertEqual(value["a"]?.arrayValue, [1])
        XCTAssertEqual(value["o"]?["k"]?.isNull, true)
        XCTAssertEqual(value["z"]?.isNull, true)
        XCTAssertNil(value["missing"])
        XCTAssertNil(JSON.array([1])["s"])
        XCTAssertEqual(value.typeName, "object")
        XCTAssertEqual(JSON.null.typeName, "null")
    }

    func testSettingReplacesInPlaceOrAppends() {
        let value: JSON = ["a": 1, "b": 2]
        XCTAssertEqual(value.setting("a", 9).encoded, #"{"a":9,"b":2}"#)
        XCTAssertEqual(value.setting("c", 3).encoded, #"{"a":1,"b":2,"c":3}"#)
        XCTAssertEqual(JSON.array([]).setting("a", 1), JSON.array([]))
    }

    /// What the budgets on tool output count: the bytes a string takes inside encoded JSON.
    func testEscapedCountMatchesTheEncoding() {
        for text in ["plain", "a\"b\\c\n\r\t", "\u{0}\u{1}\u{1f}\u{7f}", "é€😀", ""] {
            XCTAssertEqual(JSON.escapedCount(of: text), JSON.string(text).encoded.utf8.count - 2, text.debugDescription)
            XCTAssertEqual(JSON.escaped(text), Array(JSON.string(text).encoded.utf8.dropFirst().dropLast()))
        }
    }

    /// The longest prefix within an encoded budget: NULs cost six, a character is never split, an
    /// invalid byte becomes U+FFFD (three), and all of it fits when the budget allows.
    func testEscapedPrefixCutsAtTheBudgetCountedEncoded() {
        let nuls = [UInt8](repeating: 0, count: 100)
        let cut = JSON.escapedPrefix(of: nuls, within: 20)
        XCTAssertEqual(cut.text.utf8.count, 3, "three NULs are 18 encoded bytes; a fourth would be 24")
        XCTAssertEqual(cut.escapedCount, 18)
        XCTAssertFalse(cut.complete)
        let euro = Array("€€".utf8)
        XCTAssertEqual(JSON.escapedPrefix(of: euro, within: 5).text, "€", "no half character")
        let invalid: [UInt8] = [0x61, 0xFF, 0x62]
        let repaired = JSON.escapedPrefix(of: invalid, within: 100)
        XCTAssertEqual(repaired.text, "a\u{FFFD}b")
        XCTAssertEqual(repaired.escapedCount, JSON.escapedCount(of: repaired.text))
        XCTAssertTrue(repaired.complete)
        XCTAssertEqual(JSON.escapedPrefix(of: Array("ok\n".utf8), within: 4).text, "ok\n")
        XCTAssertEqual(JSON.escapedPrefix(of: [], within: 0).text, "")
    }
}
