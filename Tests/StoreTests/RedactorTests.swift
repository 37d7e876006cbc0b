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
}
