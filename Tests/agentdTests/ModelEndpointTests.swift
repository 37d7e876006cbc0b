import Foundation
import Runtime
import Store
import XCTest

/// `openai` models against a fake OpenAI-compatible server that misbehaves on purpose: each fault
/// either is retried and the job succeeds, or fails the call with a clear recorded reason — and the
/// daemon keeps serving either way.
final class ModelEndpointTests: EndToEndTestCase {
    private struct Run {
        let job: JSON
        let events: [JSON]
        let server: FakeModelServer
    }

    /// Runs `plans/openai-fake.yaml` with every role on the fake server's model `model`.
    private func run(
        _ model: String, reasks: Int = 0, maxTokens: Int = 0, modelKeys: String = "", serverArguments: [String] = [],
        apiKey: String? = nil, expectKey: String? = nil,
        file: StaticString = #filePath, line: UInt = #line
    ) throws -> Run {
        let server = try FakeModelServer(directory: harness.dir, expectKey: expectKey, arguments: serverArguments)
        if let apiKey { harness.daemonEnvironment["OPENAI_API_KEY"] = apiKey }
        try harness.start(extraArguments: ["--log-level", "debug"])
        let plan = try server.preparePlan(in: harness, model: model, reasks: reasks, maxTokens: maxTokens, modelKeys: modelKeys)
        let result = try harness.cli(["submit", plan, "--goal", "fake \(model)", "--wait", "--json"], timeout: 60)
        let job = try parseJSON(
            result.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "submit --wait --json", file: file, line: line)
        let id = try XCTUnwrap(job["id"]?.stringValue, "no job id: \(result)", file: file, line: line)
        let events = try harness.events(id)
        XCTAssertNotNil(try harness.rpc("daemon.status")["pid"]?.intValue, "the daemon still answers", file: file, line: line)
        return Run(job: job, events: events, server: server)
    }

    private func completions(_ run: Run) -> [JSON] { events(run.events, kind: "call.completed") }

    private func assertFailed(_ run: Run, containing text: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(run.job["status"]?.stringValue, "failed", dump(run.events), file: file, line: line)
        let reason = run.job["reason"]?.stringValue ?? ""
        XCTAssertTrue(reason.contains(text), "reason '\(reason)' should mention '\(text)'", file: file, line: line)
        let failed = events(run.events, kind: "call.failed")
        XCTAssertFalse(failed.isEmpty, "the failed call is recorded", file: file, line: line)
        XCTAssertTrue(
            failed.contains { ($0["payload"]?["message"]?.stringValue ?? "").contains(text) },
            "a call.failed event records '\(text)': \(dump(failed))", file: file, line: line)
    }

    // MARK: A working endpoint

    func testEveryRoleRunsOnAnOpenAIEndpointAndEachCallIsRecorded() throws {
        let run = try run("ok:basic")
        XCTAssertEqual(run.job["status"]?.stringValue, "succeeded", dump(run.events))
        let calls = completions(run)
        XCTAssertEqual(Set(calls.compactMap { $0["role"]?.stringValue }), ["planner", "actor", "critic", "verifier"])
        for call in calls {
            let payload = try XCTUnwrap(call["payload"])
            let sent = try XCTUnwrap(payload["sent"], "the request body sent is recorded: \(call.encoded)")
            XCTAssertEqual(sent["model"]?.stringValue, "ok:basic")
            XCTAssertNotNil(sent["messages"]?.arrayValue?.first?["content"]?.stringValue)
            XCTAssertNotNil(payload["raw"]?["choices"], "the raw reply is recorded")
            XCTAssertGreaterThan(payload["usage"]?["input_tokens"]?.intValue ?? 0, 0, "token usage is recorded")
            XCTAssertGreaterThan(payload["usage"]?["output_tokens"]?.intValue ?? 0, 0, "token usage is recorded")
            XCTAssertEqual(payload["http_attempts"]?.intValue, 1)
            let structured = call["role"]?.stringValue != "actor"
            XCTAssertEqual(sent["response_format"]?["type"]?.stringValue, structured ? "json_object" : nil, call.encoded)
            if structured { XCTAssertNotNil(sent["response_format"]?["schema"]?["properties"]) }
        }
        let planner = try XCTUnwrap(calls.first { $0["role"]?.stringValue == "planner" })
        XCTAssertEqual(planner["payload"]?["steps"]?.arrayValue?.count, 2, "the planner's plan parsed")
        // One after another, the calls reuse one connection (the stats request itself is another).
        let accepted = try XCTUnwrap(run.server.stats()["connections"]?["accepted"]?.intValue)
        XCTAssertEqual(accepted, 2, "\(calls.count) calls over one kept-alive connection")
    }

    func testTokensAndCostAreSummedPerRoleAndPerJob() throws {
        let run = try run("ok:usage")
        XCTAssertEqual(run.job["status"]?.stringValue, "succeeded", dump(run.events))
        let id = try XCTUnwrap(run.job["id"]?.stringValue)
        let shown = try parseJSON(try harness.cli("show", id, "--json").stdout, "show --json")
        let usage = try XCTUnwrap(shown["usage"], shown.encoded)
        var input = 0
        var output = 0
        for call in completions(run) {
            input += call["payload"]?["usage"]?["input_tokens"]?.intValue ?? 0
            output += call["payload"]?["usage"]?["output_tokens"]?.intValue ?? 0
        }
        XCTAssertGreaterThan(input, 0)
        XCTAssertEqual(usage["total"]?["input_tokens"]?.intValue, input, "the job's total is the sum of its calls")
        XCTAssertEqual(usage["total"]?["output_tokens"]?.intValue, output)
        XCTAssertEqual(usage["total"]?["calls"]?.intValue, completions(run).count)
        let critic = completions(run).filter { $0["role"]?.stringValue == "critic" }
        XCTAssertEqual(usage["critic"]?["calls"]?.intValue, critic.count)
        XCTAssertEqual(
            usage["critic"]?["input_tokens"]?.intValue, critic.reduce(0) { $0 + ($1["payload"]?["usage"]?["input_tokens"]?.intValue ?? 0) })
        let cost = try XCTUnwrap(usage["total"]?["cost_usd"]?.doubleValue, "prices give a cost")
        XCTAssertEqual(cost, (Double(input) * 1.5 + Double(output) * 6) / 1e6, accuracy: 1e-6)
        let text = try harness.cli("show", id).stdout
        XCTAssertTrue(text.contains("tokens:") && text.contains("\(input) in, \(output) out"), text)
        XCTAssertTrue(text.contains("cost:"), text)
    }

    func testATokenBudgetStopsTheJob() throws {
        let run = try run("ok:budget", maxTokens: 60)
        XCTAssertEqual(run.job["status"]?.stringValue, "failed", dump(run.events))
        XCTAssertTrue((run.job["reason"]?.stringValue ?? "").contains("token budget of 60 tokens per job used up"), run.job.encoded)
        let last = try XCTUnwrap(completions(run).last, "the call that went over is recorded")
        XCTAssertNotNil(last["payload"]?["usage"])
    }

    func testARequestBudgetQueuesRequestsInsteadOfFailingThem() throws {
        // Two requests per 1 s window: the job's calls wait their turn and all succeed.
        let run = try run("ok:rpm", modelKeys: "requests_per_minute: 2\n    rate_window: 1s")
        XCTAssertEqual(run.job["status"]?.stringValue, "succeeded", dump(run.events))
        let arrivals = try XCTUnwrap(run.server.stats()["arrivals"]?["ok:rpm"]?.arrayValue?.compactMap(\.doubleValue))
        XCTAssertEqual(arrivals.count, completions(run).count)
        XCTAssertGreaterThan(arrivals.count, 2, "more requests than one window allows")
        for i in 2..<arrivals.count {
            // Any three consecutive requests are spread over about the window (a request reaches the
            // server some time after its admission, more on a loaded machine, hence half of it);
            // without the budget they would arrive milliseconds apart.
            XCTAssertGreaterThanOrEqual(arrivals[i] - arrivals[i - 2], 0.5, "requests \(i - 2)...\(i) within one window: \(arrivals)")
        }
    }

    func testHTTPSWithTheServersCertificateAuthority() throws {
        let cert = harness.dir + "/cert.pem"
        let key = harness.dir + "/key.pem"
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else { throw XCTSkip("openssl could not make a test certificate") }
        let tls = ["--tls-cert", cert, "--tls-key", key]

        let trusted = try run("ok:tls", modelKeys: "ca_file: \(cert)", serverArguments: tls)
        XCTAssertTrue(trusted.server.baseURL.hasPrefix("https://"))
        XCTAssertEqual(trusted.job["status"]?.stringValue, "succeeded", dump(trusted.events))
        harness.cleanUpDaemon()

        // Without the CA the certificate is not trusted: the call fails at once, with the reason.
        let untrusted = try run("ok:tls-untrusted", serverArguments: tls)
        assertFailed(untrusted, containing: "TLS failed")
    }

    // MARK: Retried, then successful

    func testRateLimitIsRetriedAfterRetryAfter() throws {
        let run = try run("429:rl")
        XCTAssertEqual(run.job["status"]?.stringValue, "succeeded", dump(run.events))
        let first = try XCTUnwrap(completions(run).first)
        XCTAssertEqual(first["payload"]?["http_attempts"]?.intValue, 2, "one 429, then the answer")
        XCTAssertEqual(try run.server.requests(model: "429:rl"), completions(run).count + 1)
    }

    func testServerErrorsAreRetried() throws {
        for model in ["500:se", "503:su"] {
            let run = try run(model)
            XCTAssertEqual(run.job["status"]?.stringValue, "succeeded", "\(model): \(dump(run.events))")
            XCTAssertEqual(completions(run).first?["payload"]?["http_attempts"]?.intValue, 2, model)
            // Every request carries its call's idempotency key; the retry carries the same one.
            let id = try XCTUnwrap(run.job["id"]?.stringValue)
            let calls = events(run.events, kind: "call.started").compactMap { $0["call"]?.stringValue }
            let keys = try run.server.stats()["idempotency_keys"]?[model]?.arrayValue?.map { $0.stringValue ?? "(none)" } ?? []
            XCTAssertEqual(keys.count, calls.count + 1, "\(model): \(keys)")
            XCTAssertEqual(keys.first, keys.dropFirst().first, "\(model): the retry has the first request's key: \(keys)")
            XCTAssertEqual(Array(Set(keys)).sorted(), calls.map { "\(id)/\($0)" }.sorted(), "\(model): one key per recorded call")
            harness.cleanUpDaemon()
        }
    }

    func testAnInvalidReplyIsRecordedAndAskedAgain() throws {
        let run = try run("schema-violation-once:sv", reasks: 2)
        XCTAssertEqual(run.job["status"]?.stringValue, "succeeded", dump(run.events))
        let invalid = completions(run).filter { $0["payload"]?["invalid"] != nil }
        XCTAssertEqual(invalid.count, 1, "the violating reply is recorded as invalid: \(dump(completions(run)))")
        XCTAssertEqual(invalid.first?["role"]?.stringValue, "planner")
        let reasked = events(run.events, kind: "call.started").filter { $0["payload"]?["reask"]?.intValue == 1 }
        XCTAssertEqual(reasked.count, 1, "asked once more, with the validation error")
        let messages = reasked.first?["payload"]?["request"]?["messages"]?.arrayValue ?? []
        XCTAssertTrue(messages.contains { ($0["content"]?.stringValue ?? "").contains("invalid") }, dump(messages))
    }

    // MARK: Failed with a clear reason

    func testClientErrorsAreNotRetried() throws {
        let run = try run("400:ce")
        assertFailed(run, containing: "HTTP 400")
        XCTAssertEqual(try run.server.requests(model: "400:ce"), 1, "a 400 is not retried")
    }

    func testAWrongAPIKeyFailsAtOnce() throws {
        let run = try run("ok:key", apiKey: "sk-wrong", expectKey: "sk-right")
        assertFailed(run, containing: "HTTP 401")
        XCTAssertEqual(try run.server.stats()["unauthorized"]?.intValue, 1, "a 401 is not retried")
    }

    func testAHangingServerTimesOut() throws {
        let run = try run("hang:h")
        assertFailed(run, containing: "timed out")
        XCTAssertEqual(try run.server.requests(model: "hang:h"), 3, "tried once and retried twice")
    }

    func testASlowDripHitsTheIdleTimeout() throws {
        assertFailed(try run("drip:d"), containing: "timed out")
    }

    func testBrokenConnectionsAreRetriedThenFail() throws {
        for model in ["truncated:t", "reset:r"] {
            let run = try run(model)
            assertFailed(run, containing: "connection failed")
            XCTAssertEqual(try run.server.requests(model: model), 3, "\(model): tried once and retried twice")
            harness.cleanUpDaemon()
        }
    }

    func testRepliesThatAreNotChatCompletionsFail() throws {
        let cases = [
            ("badjson:b", "not JSON"),
            ("wrong-content-type:w", "Content-Type text/html"),
            ("oversized:o", "larger than 1048576 bytes"),
            ("empty-choices:e", "'choices' is empty"),
        ]
        for (model, reason) in cases {
            let run = try run(model)
            assertFailed(run, containing: reason)
            harness.cleanUpDaemon()
        }
    }

    func testProseInsteadOfJSONIsNeverAPlan() throws {
        let run = try run("notjson-content:n", reasks: 1)
        XCTAssertEqual(run.job["status"]?.stringValue, "failed", dump(run.events))
        XCTAssertTrue((run.job["reason"]?.stringValue ?? "").contains("no valid plan after 2 tries"), run.job.encoded)
        XCTAssertEqual(completions(run).filter { $0["payload"]?["invalid"] != nil }.count, 2)
    }

    func testSIGTERMDuringAHangingCallExitsCleanlyAndTheJobResumesLater() throws {
        let server = try FakeModelServer(directory: harness.dir)
        try harness.start()
        let plan = try server.preparePlan(in: harness, model: "hang:term")
        let id = try submit(plan)
        _ = try harness.waitForEvent(id, "the planner's call started") { $0["kind"]?.stringValue == "call.started" }
        XCTAssertTrue(waitUntil(timeout: 10) { ((try? server.requests(model: "hang:term")) ?? 0) >= 1 }, "the request reached the server")
        harness.sendSignal(SIGTERM)
        let exit = try harness.waitForExit(timeout: 30)
        XCTAssertEqual(exit.status, 0, "the daemon drains, abandons the hanging request and exits 0: \(harness.daemonLog())")
        XCTAssertEqual(exit.signal, 0)
        let rows = try harness.sqlite("SELECT status FROM jobs WHERE id = '\(id)'")
        XCTAssertEqual(rows.trimmingCharacters(in: .whitespacesAndNewlines), "running", "the job is left to resume at the next start")
    }

    func testCancellingAJobAbortsItsHTTPRequest() throws {
        let server = try FakeModelServer(directory: harness.dir)
        try harness.start()
        let plan = try server.preparePlan(in: harness, model: "hang:cancel")
        let id = try submit(plan)
        XCTAssertTrue(waitUntil(timeout: 10) { ((try? server.requests(model: "hang:cancel")) ?? 0) >= 1 }, "the request reached the server")
        XCTAssertEqual(try server.stats()["connections"]?["open"]?.intValue, 2, "the hanging request's connection and this one")
        let cancelled = try harness.cli("cancel", id, "--json")
        XCTAssertEqual(try parseJSON(cancelled.stdout)["status"]?.stringValue, "cancelled", "\(cancelled)")
        // The daemon closed the request's connection: only the stats request's own is open.
        XCTAssertTrue(
            waitUntil(timeout: 10) { (try? server.stats()["connections"]?["open"]?.intValue) == 1 },
            "the hanging request was aborted: \((try? server.stats())?.encoded ?? "")")
        XCTAssertEqual(try server.requests(model: "hang:cancel"), 1, "and not retried")
    }

    // MARK: Secrets

    func testTheAPIKeyIsSentButNeverStoredOrLogged() throws {
        let key = "sk-agentd-test-\(UUID().uuidString)"
        let run = try run("ok:secret", apiKey: key, expectKey: key)
        XCTAssertEqual(run.job["status"]?.stringValue, "succeeded", "the key reached the server: \(dump(run.events))")
        _ = try harness.cli(["transcript", run.job["id"]?.stringValue ?? "", "--format", "jsonl"])
        harness.sendSignal(SIGTERM)
        _ = try harness.waitForExit()
        let needle = Array(key.utf8)
        for path in [harness.dbPath, harness.dbPath + "-wal"] + harness.logPaths {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            XCTAssertFalse(contains(Array(data), needle), "the API key appears in \(path)")
        }
        XCTAssertFalse(harness.daemonLog().isEmpty, "the daemon logged (at debug level)")
    }

    private func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard needle.count <= haystack.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if Array(haystack[start..<(start + needle.count)]) == needle { return true }
        }
        return false
    }
}
