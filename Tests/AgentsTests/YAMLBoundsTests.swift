import Foundation
import XCTest

@testable import Agents

/// The bounds on the work a YAML document may ask of the reader (`YAMLBounds`) and on a reply's
/// nesting, each asserted from both sides: the document at the limit reads, one step past it is
/// refused with an error naming the limit.
final class YAMLBoundsTests: XCTestCase {
    /// `PlanLoaderTests.minimal` with its reply (line 7) replaced by `reply`, which may span lines.
    func plan(reply: String) -> String {
        var lines = PlanLoaderTests.minimal.components(separatedBy: "\n")
        lines[6] = "            - reply: " + reply
        return lines.joined(separator: "\n")
    }

    func parse(_ yaml: String) -> Result<Plan, PlanError> {
        Result { () throws(PlanError) in try PlanLoader.parse(yaml: yaml, file: "t.yaml", baseDirectory: nil) }
    }

    func assertRefused(
        _ yaml: String, line expectedLine: Int?, contains text: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        switch parse(yaml) {
        case let .success(plan): XCTFail("expected an error naming '\(text)', got \(plan)", file: file, line: line)
        case let .failure(error):
            XCTAssertEqual(error.file, "t.yaml", file: file, line: line)
            if let expectedLine { XCTAssertEqual(error.line, expectedLine, "\(error)", file: file, line: line) }
            XCTAssertNotNil(error.column, "\(error)", file: file, line: line)
            XCTAssertTrue(error.message.contains(text), "\(error)", file: file, line: line)
        }
    }

    /// The actor's first scripted reply in a plan made by `plan(reply:)`.
    func firstReply(_ plan: Plan) -> ScriptReply? {
        guard case let .scripted(script) = plan.models["m"]?.backend else { return nil }
        return script.rules[.actor]?.first?.reply
    }

    /// `depth` flow lists, one inside the other, around a scalar.
    func nested(_ depth: Int) -> String {
        String(repeating: "[", count: depth) + "x" + String(repeating: "]", count: depth)
    }

    // MARK: Nesting

    func testNestingIsBoundedAtTheLimit() {
        XCTAssertEqual(YAMLBounds.maxDepth, 100)
        XCTAssertNil(YAMLBounds.check(nested(100)))
        XCTAssertNil(YAMLBounds.check("a:\n" + String(repeating: "  ", count: 1) + "b: " + nested(98)))
        let refused = YAMLBounds.check(nested(101))
        XCTAssertEqual(refused?.line, 1)
        XCTAssertEqual(refused?.column, 101, "the 101st '[' is the one refused")
        XCTAssertEqual(refused?.message.contains("nested more than 100 levels deep (the limit)"), true, "\(String(describing: refused))")
    }

    func testADeeplyNestedPlanIsRefusedNamingTheLimit() {
        // The reply's outermost list is the plan's seventh level (the document, models, m, script,
        // actor, the rule): 95 lists reach level 101.
        assertRefused(plan(reply: nested(95)), line: 7, contains: "lists and mappings nested more than 100 levels deep (the limit)")
        // At level 100 the document reads; the reply (94 levels) is then refused by the reply's own bound.
        XCTAssertNil(YAMLBounds.check(plan(reply: nested(94))))
        assertRefused(plan(reply: nested(94)), line: 7, contains: "a reply nests lists and mappings more than 64 levels deep (the limit)")
    }

    func testRepliesNestAtMostTheirLimit() throws {
        XCTAssertEqual(PlanReader.maxReplyDepth, 64)
        let plan = try parse(plan(reply: nested(64))).get()
        guard case let .json(reply) = firstReply(plan) else {
            return XCTFail("no reply in \(plan)")
        }
        var depth = 0
        var value = reply
        while case let .array(items) = value, let first = items.first {
            depth += 1
            value = first
        }
        XCTAssertEqual(depth, 64)
        // A job's plan is loaded again from its snapshot, which must be within the document's bound too.
        XCTAssertEqual(try PlanLoader.parse(yaml: plan.json.encoded, file: "<snapshot>", baseDirectory: nil), plan)
        assertRefused(self.plan(reply: nested(65)), line: 7, contains: "more than 64 levels deep (the limit)")
    }

    // MARK: Complex keys

    func testComplexKeysAreRefused() {
        // `PlanLoaderTests.minimal` ends with an empty line 13.
        let minimal = PlanLoaderTests.minimal
        assertRefused(minimal + "? [a, b]\n: x\n", line: 13, contains: "a mapping key is a list (complex keys are refused")
        assertRefused(minimal + "? {a: b}\n: x\n", line: 13, contains: "a mapping key is a mapping (complex keys are refused")
        assertRefused(plan(reply: "{[a]: x}"), line: 7, contains: "a mapping key is a list (complex keys are refused")
        assertRefused(
            minimal + "x: &list [a]\n? *list\n: y\n", line: 14,
            contains: "a mapping key is an alias of a list or mapping (complex keys are refused")
    }

    func testScalarKeysInEveryFormAreRead() throws {
        // An explicit key, and an alias of a scalar as a key, are plain strings: both read.
        let explicit = try parse(plan(reply: "\n                ? output\n                : x")).get()
        XCTAssertEqual(firstReply(explicit), .json(.object([("output", .string("x"))])))
        let aliased = try parse(plan(reply: "\n                name: &k output\n                *k : y")).get()
        XCTAssertEqual(
            firstReply(aliased),
            .json(.object([("name", .string("output")), ("output", .string("y"))])))
    }

    /// The fuzzer's input that held the plan parser for minutes: nested complex keys, some repeated.
    func testTheFuzzersSlowPlanIsRefusedForItsComplexKeys() throws {
        let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/corpus/plan-nested-complex-keys")
        let bytes = try Data(contentsOf: corpus)
        XCTAssertEqual(bytes.first, 0x02, "the first byte picks the plan parser")
        // What the fuzz target parses: the rest, invalid UTF-8 replaced.
        let yaml = String(decoding: bytes.dropFirst(), as: UTF8.self)
        assertRefused(yaml, line: nil, contains: "complex keys are refused")
    }

    // MARK: Aliases

    func testABillionLaughsPlanIsRefusedNamingTheLimit() {
        var reply = "\n                a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"
        for level in 1...9 {
            let previous = Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ", ")
            reply += "\n                a\(level): &a\(level) [\(previous)]"
        }
        // 10^10 values once expanded; a0 to a4 hold about 123,000, a5 (line 13) crosses the bound.
        assertRefused(plan(reply: reply), line: 13, contains: "aliases expanded, holds more than 1000000 values (the limit)")
    }

    func testAliasesExpandToAtMostTheLimit() {
        XCTAssertEqual(YAMLBounds.maxNodes, 1_000_000)
        // The root list, an anchored list of 998 scalars (999 nodes) and 1000 aliases of it (999 each):
        // 1 + 999 × 1001 = 1,000,000 nodes.
        let anchored = "&l [" + Array(repeating: "x", count: 998).joined(separator: ",") + "]"
        let aliases = Array(repeating: "*l", count: 1000).joined(separator: ",")
        XCTAssertNil(YAMLBounds.check("[\(anchored),\(aliases)]"))
        let refused = YAMLBounds.check("[\(anchored),\(aliases),x]")
        XCTAssertEqual(refused?.message.contains("holds more than 1000000 values (the limit)"), true, "\(String(describing: refused))")
    }
}
