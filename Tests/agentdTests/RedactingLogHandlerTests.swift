import Foundation
import Logging
import Store
import Synchronization
import XCTest

@testable import agentd

/// The daemon's log handler (`RedactingLogHandler` around swift-log's `StreamLogHandler`, as `serve`
/// bootstraps it), writing to a stream the test reads: a secret in a message, in a metadata value
/// given with the line or set on the logger, or in an attached error, is written as
/// `[REDACTED:NAME]`; everything else passes unchanged.
final class RedactingLogHandlerTests: XCTestCase {
    private let secret = "tok-\(UUID().uuidString)"

    /// A logger whose lines go through the redacting handler into `output`.
    private func logger(_ output: CapturedStream, secrets: [String: String]? = nil) -> Logger {
        let redactor = Redactor(environment: secrets ?? ["SECRET_TOKEN": secret], names: ["SECRET_TOKEN"])
        var logger = Logger(label: "agentd.test") { label in
            RedactingLogHandler(wrapped: StreamLogHandler(label: label, stream: output, metadataProvider: nil), redactor: redactor)
        }
        logger.logLevel = .trace
        return logger
    }

    func testASecretInTheMessageIsRedacted() {
        let output = CapturedStream()
        logger(output).info("calling with \(secret) now")
        XCTAssertFalse(output.text.contains(secret), output.text)
        XCTAssertTrue(output.text.contains("calling with [REDACTED:SECRET_TOKEN] now"), output.text)
    }

    func testASecretInTheLinesMetadataIsRedacted() {
        let output = CapturedStream()
        logger(output).warning(
            "export failed",
            metadata: [
                "url": "http://collector/v1/traces?key=\(secret)",
                "nested": .dictionary(["header": .array([.string("Bearer \(secret)")])]),
                "plain": "nothing secret",
            ])
        XCTAssertFalse(output.text.contains(secret), output.text)
        XCTAssertTrue(output.text.contains("url=http://collector/v1/traces?key=[REDACTED:SECRET_TOKEN]"), output.text)
        XCTAssertTrue(output.text.contains("Bearer [REDACTED:SECRET_TOKEN]"), output.text)
        XCTAssertTrue(output.text.contains("plain=nothing secret"), "other values pass unchanged: \(output.text)")
    }

    func testASecretInTheLoggersOwnMetadataIsRedacted() {
        let output = CapturedStream()
        var logger = logger(output)
        logger[metadataKey: "client"] = "\(secret)@host"
        logger.info("connected")
        XCTAssertFalse(output.text.contains(secret), output.text)
        XCTAssertTrue(output.text.contains("client=[REDACTED:SECRET_TOKEN]@host"), output.text)
        XCTAssertEqual(logger[metadataKey: "client"], "\(secret)@host", "the logger keeps the value it was given")
    }

    func testASecretInAnAttachedErrorIsRedacted() {
        let output = CapturedStream()
        logger(output).error("request failed", error: LeakyError(detail: "401 for key \(secret)"))
        XCTAssertFalse(output.text.contains(secret), output.text)
        XCTAssertTrue(output.text.contains("401 for key [REDACTED:SECRET_TOKEN]"), output.text)
    }

    func testWithoutSecretsLinesPassUnchanged() {
        let output = CapturedStream()
        logger(output, secrets: [:]).info("value \(secret)", metadata: ["k": "\(secret)"])
        XCTAssertTrue(output.text.contains("k=\(secret)"), output.text)
        XCTAssertTrue(output.text.contains("value \(secret)"), output.text)
    }
}

private struct LeakyError: Error, CustomStringConvertible {
    let detail: String
    var description: String { detail }
}

/// A `TextOutputStream` the test reads back.
private final class CapturedStream: TextOutputStream, Sendable {
    private let written = Mutex("")

    var text: String { written.withLock { $0 } }

    func write(_ string: String) {
        written.withLock { $0 += string }
    }
}
