import Foundation
import Store
import TestSupport
import XCTest

@testable import Orchestrator

/// docs/protocol.md against the code: its method headings and method table name exactly the methods
/// the server dispatches (`RPCMethod`), and its error table exactly the codes `RPCError.Code`
/// defines — which are the only error codes written anywhere in the sources.
final class ProtocolDocTests: XCTestCase {
    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    private func protocolDoc() throws -> String {
        try String(contentsOf: Self.root.appendingPathComponent("docs/protocol.md"), encoding: .utf8)
    }

    /// The lines of the `## title` section, up to the next `## ` heading.
    static func section(_ title: String, of doc: String) -> [Substring] {
        let lines = doc.split(separator: "\n", omittingEmptySubsequences: false)
        guard let start = lines.firstIndex(of: Substring("## \(title)")) else { return [] }
        let rest = lines[(start + 1)...]
        let end = rest.firstIndex { $0.hasPrefix("## ") } ?? rest.endIndex
        return Array(rest[..<end])
    }

    /// Method names from `### job.submit`-style headings of the Methods section.
    static func documentedMethodHeadings(_ doc: String) -> Set<String> {
        let heading = /^### ([a-z]+\.[a-z_]+)$/
        return Set(section("Methods", of: doc).compactMap { line in (try? heading.wholeMatch(in: line)).map { String($0.1) } })
    }

    /// Method names from the Methods section's summary table (`| [`job.get`](#jobget) | … |`).
    static func documentedMethodTable(_ doc: String) -> Set<String> {
        let row = /^\| \[`([a-z]+\.[a-z_]+)`\]\(#[a-z]+\) \|.*$/
        return Set(section("Methods", of: doc).compactMap { line in (try? row.wholeMatch(in: line)).map { String($0.1) } })
    }

    /// Codes from the first column of the Errors section's table.
    static func documentedErrorCodes(_ doc: String) -> [Int] {
        let row = /^\| (-3[0-9]{4}) \|.*$/
        return section("Errors", of: doc).compactMap { line in (try? row.wholeMatch(in: line)).flatMap { Int($0.1) } }
    }

    func testDocumentedMethodsAreExactlyTheServersMethods() throws {
        let doc = try protocolDoc()
        let code = Set(RPCMethod.allCases.map(\.rawValue))
        let headings = Self.documentedMethodHeadings(doc)
        XCTAssertEqual(headings.subtracting(code).sorted(), [], "documented in docs/protocol.md but not served")
        XCTAssertEqual(code.subtracting(headings).sorted(), [], "served but without a heading in docs/protocol.md")
        let table = Self.documentedMethodTable(doc)
        XCTAssertEqual(table.subtracting(code).sorted(), [], "in the method table of docs/protocol.md but not served")
        XCTAssertEqual(code.subtracting(table).sorted(), [], "served but missing from the method table of docs/protocol.md")
    }

    func testDocumentedErrorCodesAreExactlyTheCodesDefined() throws {
        let documented = Self.documentedErrorCodes(try protocolDoc())
        XCTAssertEqual(documented.count, Set(documented).count, "a code appears twice in the error table")
        let code = Set(RPCError.Code.allCases.map(\.rawValue))
        XCTAssertEqual(Set(documented).subtracting(code).sorted(), [], "documented in docs/protocol.md but not defined")
        XCTAssertEqual(code.subtracting(documented).sorted(), [], "defined but missing from the error table of docs/protocol.md")
    }

    /// An error code written as a number outside `RPCError.Code` would bypass the doc check above.
    func testEveryErrorCodeInTheSourcesIsDefined() throws {
        let defined = Set(RPCError.Code.allCases.map(\.rawValue))
        let sources = Self.root.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
        XCTAssertFalse(files.isEmpty)
        let literal = /-32[0-9]{3}\b/
        for file in files {
            // Comments may speak of ranges (-32000…-32099); code may not send them.
            let code = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
                .filter { !$0.drop { $0 == " " }.hasPrefix("//") }.joined(separator: "\n")
            for match in code.matches(of: literal) {
                let value = Int(code[match.range])!
                XCTAssertTrue(defined.contains(value), "\(file.lastPathComponent) uses error code \(value), which RPCError.Code lacks")
            }
        }
    }

    /// The parsers find what they look for, so the comparisons above cannot pass on empty sets.
    func testTheDocParsersReadTheShapesTheyCompare() {
        let doc = """
            ## Methods
            | [`job.get`](#jobget) | One job. |
            ### job.get
            ### Storage faults
            ## Errors
            | -32700 | `parse error:` | bad JSON | null |
            | code | message |
            ## Next
            ### job.late
            | -32099 | x |
            """
        XCTAssertEqual(Self.documentedMethodHeadings(doc), ["job.get"])
        XCTAssertEqual(Self.documentedMethodTable(doc), ["job.get"])
        XCTAssertEqual(Self.documentedErrorCodes(doc), [-32700])
    }

    /// The payload column of the events table's row for `kind` (`| \`kind\` | who | payload |`).
    static func documentedPayload(_ kind: String, _ doc: String) -> String? {
        let lines = section("Events and the `job.event` notification", of: doc)
        guard let row = lines.first(where: { $0.hasPrefix("| `\(kind)` |") }) else { return nil }
        return row.split(separator: "|", omittingEmptySubsequences: false).dropFirst(3).joined(separator: "|")
    }

    /// Every member every event kind can write, from the typed events (`Sources/Store/Events`) with
    /// every optional member set and each alternative outcome: the doc's payload reference names each.
    static var everyPayloadMember: [EventKind: Set<String>] {
        func keys(_ payloads: JSON...) -> Set<String> { Set(payloads.flatMap { $0.objectValue?.map(\.0) ?? [] }) }
        let outcomes: [CallCompleted.Outcome] = [
            .verdict(["verdict": "pass"]), .steps(["a"]), .verification(verified: true, reason: "r"), .invalid("why"),
        ]
        let completed = outcomes.map {
            CallCompleted(
                reply: "r", toolCalls: [["id": "t"]], usage: .init(inputTokens: 1, outputTokens: 2), sent: ["s": 1], raw: ["r": 1],
                httpAttempts: 2, costUSD: 0.5, durationMs: 1, outcome: $0
            ).json
        }
        let completedKeys = completed.reduce(into: Set<String>()) { $0.formUnion(keys($1)) }
        return [
            .jobSubmitted: keys(
                JobSubmitted(
                    plan: "p", goal: "g", inputs: [:], idempotencyKey: "k", submitterUID: 1, workspace: "/w", retryOf: "J0", fromStep: 2,
                    format: 3, planSHA256: "a", jobSHA256: "b"
                ).json),
            .jobState: keys(JobState(from: .queued, to: .running, reason: "r", steps: ["s"]).json),
            .jobReplanned: keys(JobReplanned(replan: 1, fromStep: 0, steps: ["s"]).json),
            .jobResumed: keys(JobResumed(replayingEvents: 3).json),
            .jobRetried: keys(JobRetried(job: "J2", fromStep: 2, goal: "g").json),
            .callStarted: keys(CallStarted(agent: "a", reask: 0, request: [:]).json),
            .callCompleted: completedKeys,
            .callFailed: keys(CallFailed(error: "exit", message: "m", stderr: "e", durationMs: 1).json),
            .callRestarted: keys(CallRestarted().json),
            .toolStarted: keys(
                ToolStarted(
                    tool: "t", toolCallID: "i", idempotencyKey: "k", argv: ["a"], path: "p", bytes: 1, arguments: "x", invalid: "y"
                ).json),
            .toolCompleted: keys(ToolCompleted(tool: "t", toolCallID: "i", ok: true, result: [:], durationMs: 1).json),
            .toolRestarted: keys(ToolRestarted(idempotencyKey: "k").json),
            .attemptDuplicate: keys(AttemptDuplicate(sameAsAttempt: 0, feedback: "f").json),
            .candidateStarted: keys(
                CandidateStarted(sample: 1, parent: CandidateRef(attempt: 0, sample: 2), temperature: 0.3, workspace: "/w").json),
            .candidateJudged: keys(CandidateJudged(sample: 1, outcome: .pass, score: 0.9, feedback: "f").json),
            .candidateChosen: keys(CandidateChosen(sample: 1, score: 0.9, reason: .passed, workspace: "/w").json),
            .stepExhausted: keys(StepExhausted(attempts: 2, lastFeedback: "f", bestAttempt: 1, bestScore: 0.4).json),
            .stepTimedOut: keys(StepTimedOut(timeoutSeconds: 1, reason: "r").json),
            .stepInfeasible: keys(StepInfeasible(attempts: 1, feasibility: 0.1, replanBelow: 0.3, feedback: "f").json),
            .stepChecked: keys(StepChecked(sample: 0, passed: true, feedback: "f").json),
            .gateRequested: keys(
                GateRequested(gate: "c1.0", rule: 0, review: "human", tool: "t", arguments: "{}", requestSHA256: "h").json),
            .gateDecided: keys(
                GateDecided(
                    gate: "c1.0", decision: .approved, by: .person, requestSHA256: "h", call: "c2", uid: 1, user: "u", note: "n",
                    editedArguments: "{}", waitedMs: 1
                ).json),
            .gateRefused: keys(GateRefused(gate: "c1.0", uid: 1, user: "u", reason: "r").json),
            .juryConvened: keys(JuryConvened(rule: "majority", jurors: ["a"], order: [0], seed: 1).json),
            .juryVoted: keys(JuryVoted(juror: "a", index: 0, outcome: .error, score: 0.5, feedback: "f", error: "e").json),
            .juryDecided: keys(JuryDecided(rule: "majority", passes: 1, fails: 0, errors: 0, outcome: .pass, score: 1, feedback: "f").json),
        ]
    }

    /// The events table has a row for every kind, and each row names every member its payload can
    /// carry (a member added to a typed event must be documented with it).
    func testTheEventReferenceNamesEveryPayloadMember() throws {
        let doc = try protocolDoc()
        let members = Self.everyPayloadMember
        XCTAssertEqual(Set(members.keys), Set(EventKind.allCases), "the test covers every kind")
        for kind in EventKind.allCases {
            guard let payload = Self.documentedPayload(kind.rawValue, doc) else {
                XCTFail("docs/protocol.md has no row for \(kind.rawValue) in its events table")
                continue
            }
            for member in (members[kind] ?? []).sorted() where !payload.contains("`\(member)`") {
                XCTFail("docs/protocol.md's row for \(kind.rawValue) does not name its payload member `\(member)`")
            }
        }
    }
}
