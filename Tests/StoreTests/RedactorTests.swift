import Store
import XCTest

final class RedactorTests: XCTestCase {
    func testEveryOccurrenceOfEverySecretIsReplacedByItsName() {
        let redactor = Redactor(
            environment: ["OPENAI_API_KEY": "sk-abcdefgh123", "DB_PASSWORD": "hunter2hunter2", "SHORT": "abc"],
            names: ["DB_PASSWORD", "SHORT"])
        XCTAssertEqual(
            redactor.redact(#"{"a":"sk-abcdefgh123 and sk-abcdefgh123","b":"pw=hunter2hunter2"}"#),
            #"{"a":"[REDACTED:OPENAI_API_KEY] and [REDACTED:OPENAI_API_KEY]","b":"pw=[REDACTED:DB_PASSWORD]"}"#)
        XCTAssertEqual(redactor.redact("abc is too short to be a secret"), "abc is too short to be a secret")
        XCTAssertEqual(redactor.redact("nothing here"), "nothing here")
    }

    func testALongerSecretContainingAShorterOneIsReplacedWhole() {
        let redactor = Redactor(environment: ["OUTER": "token-0123456789-suffix", "INNER": "0123456789"], names: ["OUTER", "INNER"])
        XCTAssertEqual(redactor.redact("x token-0123456789-suffix y 0123456789"), "x [REDACTED:OUTER] y [REDACTED:INNER]")
    }

    func testVariablesAddedLaterAndUnsetOnesAreHandled() {
        let redactor = Redactor(environment: ["LATER_KEY": "later-secret-value"], names: ["NOT_SET"])
        XCTAssertTrue(redactor.isEmpty)
        redactor.add(variable: "LATER_KEY")
        redactor.add(variable: "LATER_KEY")
        var bytes = Array("later-secret-value".utf8)
        XCTAssertTrue(redactor.redact(&bytes))
        XCTAssertEqual(String(decoding: bytes, as: UTF8.self), "[REDACTED:LATER_KEY]")
    }

    /// A secret with a quote, a backslash and a tab is found as it is, JSON-escaped (an event's
    /// string) and escaped twice (a tool result inside the next model request), wherever it stands.
    func testASecretWithQuotesAndBackslashesIsFoundRawEscapedAndDoubleEscaped() {
        let secret = "pa\"ss\\wo\trd-0123"
        let redactor = Redactor(environment: ["ODD_SECRET": secret], names: ["ODD_SECRET"])
        let once = JSON.object([("stdout", .string("the secret: \(secret)!"))]).encoded
        let twice = JSON.object([("content", .string(once))]).encoded
        XCTAssertTrue(once.contains(#"pa\"ss\\wo\trd"#), once)
        XCTAssertTrue(twice.contains(#"pa\\\"ss\\\\wo\\trd"#), twice)
        XCTAssertEqual(redactor.redact("raw \(secret) text"), "raw [REDACTED:ODD_SECRET] text")
        XCTAssertEqual(redactor.redact(once), #"{"stdout":"the secret: [REDACTED:ODD_SECRET]!"}"#)
        XCTAssertEqual(redactor.redact(twice), #"{"content":"{\"stdout\":\"the secret: [REDACTED:ODD_SECRET]!\"}"}"#)
        // What is left still parses, and nothing of the secret is in it.
        let cleaned = redactor.redact(twice)
        XCTAssertEqual(
            try JSON.parse(JSON.parse(cleaned)["content"]?.stringValue ?? "")["stdout"]?.stringValue, "the secret: [REDACTED:ODD_SECRET]!")
        XCTAssertFalse(cleaned.contains("pa"), cleaned)
    }

    /// A secret without characters that JSON escapes has one form: it is listed (and matched) once.
    func testAPlainSecretIsMatchedInEveryEncodingAlike() {
        let redactor = Redactor(environment: ["PLAIN": "plain-token-123456"], names: ["PLAIN"])
        let twice = JSON.string(JSON.object([("a", "x plain-token-123456 y")]).encoded).encoded
        XCTAssertEqual(redactor.redact(twice), #""{\"a\":\"x [REDACTED:PLAIN] y\"}""#)
    }
}
