import Agents
import Foundation
import Runtime
import Store

/// The HTTP side shared by every `openai` model of the daemon: one `HTTPClient` on the loop and, per
/// endpoint (base URL), the limit on requests in flight and the rate budgets. The plans that name an
/// endpoint set its limits (the largest `max_concurrent`, the smallest budgets); the daemon's
/// configuration (`endpoints:` in `serve --config`) overrides them, and a reload applies at once to
/// requests that wait. Loop thread only.
package final class ModelEndpoints: @unchecked Sendable {
    private let loop: EventLoop
    private var client: HTTPClient?
    private var gates: [String: EndpointGate] = [:]
    /// The configured limits by endpoint key (`OpenAISpec.endpointKey`).
    private var configured: [String: EndpointLimits] = [:]

    package init(loop: EventLoop) {
        self.loop = loop
    }

    /// The loop's HTTP client, created on first use.
    var http: HTTPClient {
        if let client { return client }
        let created = HTTPClient(loop: loop)
        client = created
        return created
    }

    /// The gate of `baseURL`; the budgets of every plan that names the endpoint apply (the smallest),
    /// unless the daemon's configuration sets them.
    func gate(for baseURL: String, spec: OpenAISpec) -> EndpointGate {
        let key = OpenAISpec.endpointKey(baseURL)
        let gate: EndpointGate
        if let existing = gates[key] {
            gate = existing
        } else {
            gate = EndpointGate(limit: spec.maxConcurrent)
            gate.configure(configured[key])
            gates[key] = gate
        }
        gate.raisePlanLimit(to: spec.maxConcurrent)
        gate.budget.tighten(requests: spec.requestsPerMinute, tokens: spec.tokensPerMinute, window: spec.rateWindowSeconds)
        return gate
    }

    /// Replaces the configured limits: endpoints left out go back to their plans' values.
    func configure(_ limits: [String: EndpointLimits]) {
        configured = limits
        for (key, gate) in gates { gate.configure(limits[key]) }
    }

    /// Aborts requests in flight and frees the client's loop handles.
    package func close() {
        client?.close()
        client = nil
    }
}

/// Requests in flight to one endpoint, at most `limit`; the rest wait in arrival order. Loop only.
final class EndpointGate: @unchecked Sendable {
    /// The largest `max_concurrent` of the plans that used the endpoint.
    private(set) var planLimit: Int
    /// The daemon configuration's `max_concurrent`, which wins over the plans'.
    private(set) var configuredLimit: Int?
    var limit: Int { configuredLimit ?? planLimit }
    private(set) var inUse = 0
    private var waiting: [UnsafeContinuation<Void, Never>] = []
    /// Requests waiting for a slot.
    var waitingCount: Int { waiting.count }
    /// Set when the endpoint rejected `json_schema`: later requests ask for `json_object` instead.
    var structuredFallback: OpenAISpec.StructuredOutput?
    /// Requests and tokens per window.
    let budget = RateBudget()

    init(limit: Int) {
        self.planLimit = limit
    }

    func raisePlanLimit(to limit: Int) {
        planLimit = max(planLimit, limit)
        admitWaiting()
    }

    /// Applies the configured limits (nil: the plans' values again).
    func configure(_ limits: EndpointLimits?) {
        configuredLimit = limits?.maxConcurrent
        budget.configure(limits)
        admitWaiting()
    }

    func acquire() async {
        if inUse < limit {
            inUse += 1
            return
        }
        await withUnsafeContinuation { c in
            // Checked again: a slot may have been freed while the task got here.
            if inUse < limit {
                inUse += 1
                c.resume()
            } else {
                waiting.append(c)
            }
        }
    }

    func release() {
        inUse -= 1
        admitWaiting()
    }

    /// Lets waiting requests in, in order, while there is room (after a release or a raised limit;
    /// a lowered limit lets none in until enough requests end).
    private func admitWaiting() {
        while inUse < limit, !waiting.isEmpty {
            inUse += 1
            waiting.removeFirst().resume()
        }
    }
}

/// Requests-per-window and tokens-per-window budgets of one endpoint, over a sliding window: a request
/// that would exceed either waits (it is queued, not failed) until old entries leave the window. A
/// request's tokens are estimated when it is admitted and corrected by the usage its reply reports.
/// Loop thread only.
final class RateBudget: @unchecked Sendable {
    final class Entry {
        let at: UInt64
        var tokens: Int
        init(at: UInt64, tokens: Int) {
            self.at = at
            self.tokens = tokens
        }
    }

    /// The plans' budgets (the smallest of each) and window (the last plan's that set a budget).
    private var planRequests: Int?
    private var planTokens: Int?
    private var planWindow: Double = 60
    /// The daemon configuration's, which win over the plans'.
    private var configured: EndpointLimits?
    private var entries: [Entry] = []

    var requests: Int? { configured?.requestsPerMinute ?? planRequests }
    var tokens: Int? { configured?.tokensPerMinute ?? planTokens }
    private var windowNanos: UInt64 { UInt64((configured?.rateWindowSeconds ?? planWindow) * 1e9) }

    var isLimited: Bool { requests != nil || tokens != nil }

    func tighten(requests: Int?, tokens: Int?, window: Double) {
        if let requests { planRequests = min(planRequests ?? .max, requests) }
        if let tokens { planTokens = min(planTokens ?? .max, tokens) }
        if requests != nil || tokens != nil { planWindow = window }
    }

    /// Applies the configured budgets (nil: the plans' again). A request already waiting for room
    /// sees them when it next looks, within one window.
    func configure(_ limits: EndpointLimits?) {
        configured = limits
    }

    /// Waits until a request of about `estimate` tokens fits the budgets, then counts it.
    func admit(estimate: Int) async throws(ModelCallError) -> Entry {
        while true {
            let now = monotonicNanos()
            entries.removeAll { now - $0.at >= windowNanos }
            let used = entries.reduce(0) { $0 + $1.tokens }
            let requestsFit = requests.map { entries.count < $0 } ?? true
            // A request larger than the whole token budget still goes, alone in its window.
            let tokensFit = tokens.map { used + estimate <= $0 || entries.isEmpty } ?? true
            if requestsFit && tokensFit {
                let entry = Entry(at: now, tokens: estimate)
                entries.append(entry)
                return entry
            }
            let wait = entries.first.map { $0.at + windowNanos - now } ?? 1_000_000
            do {
                try await Task.sleep(nanoseconds: max(wait, 1_000_000))
            } catch {
                throw ModelCallError(.cancelled, "cancelled")
            }
        }
    }
}

/// The `openai` model backend: `POST {base_url}/chat/completions` on the daemon's loop.
///
/// Planner, critic and verifier replies are requested as JSON constrained by their schema (see
/// `OpenAISpec.StructuredOutput`); the agent validates the reply, and the runner re-asks with the
/// validation error when it does not fit. 429, 5xx, timeouts and broken connections are retried with
/// exponential backoff and jitter, waiting at least the server's `Retry-After`; other statuses fail
/// the call at once. The API key is read from the daemon's environment for each request and sent only
/// in the `Authorization` header: it is in no recorded request, event or log line.
package struct OpenAIBackend: ModelBackend {
    let spec: OpenAISpec
    let endpoints: ModelEndpoints
    let environment: [String: String]
    /// `policy.call_timeout`: bounds each HTTP request as well.
    let callTimeoutSeconds: Double

    package init(spec: OpenAISpec, endpoints: ModelEndpoints, environment: [String: String], callTimeoutSeconds: Double) {
        self.spec = spec
        self.endpoints = endpoints
        self.environment = environment
        self.callTimeoutSeconds = callTimeoutSeconds
    }

    var baseURL: String {
        OpenAISpec.endpointKey(
            spec.baseURL ?? environment["OPENAI_BASE_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://api.openai.com/v1")
    }

    package func complete(_ request: ModelRequest) async throws(ModelCallError) -> ModelReply {
        guard let model = spec.model ?? environment["OPENAI_MODEL"].flatMap({ $0.isEmpty ? nil : $0 }) else {
            throw ModelCallError(.configuration, "no model name: set 'model' in the plan or OPENAI_MODEL for the daemon")
        }
        let base = baseURL
        let gate = endpoints.gate(for: base, spec: spec)
        var structured = gate.structuredFallback ?? spec.structuredOutput
        var attempt = 0
        var fellBack = false
        while true {
            attempt += 1
            if Task.isCancelled { throw ModelCallError(.cancelled, "cancelled") }
            let body = Self.body(request, model: model, spec: spec, structured: structured)
            var http = HTTPRequest(
                url: base + "/chat/completions", headers: headers(idempotencyKey: request.idempotencyKey), body: body.bytes)
            let timeout = min(spec.timeoutSeconds, callTimeoutSeconds)
            http.totalTimeoutMilliseconds = Int(timeout * 1000)
            http.connectTimeoutMilliseconds = Int(min(spec.connectTimeoutSeconds, timeout) * 1000)
            http.idleTimeoutMilliseconds = Int(min(spec.idleTimeoutSeconds, timeout) * 1000)
            http.maxResponseBytes = spec.maxReplyBytes
            http.caFile = spec.caFile

            var admitted: RateBudget.Entry?
            if gate.budget.isLimited {
                let estimate = request.messages.reduce(0) { $0 + $1.content.utf8.count } / 4 + (spec.maxTokens ?? 256)
                admitted = try await gate.budget.admit(estimate: estimate)
            }
            await gate.acquire()
            let result: Result<HTTPResponse, HTTPError>
            do {
                result = .success(try await endpoints.http.send(http))
            } catch {
                result = .failure(error)
            }
            gate.release()

            let failure: ModelCallError
            var retryAfter: Double?
            switch result {
            case .success(let response) where (200..<300).contains(response.status):
                var reply = try Self.reply(response, sent: body, attempts: attempt)
                if let admitted, let usage = reply.usage { admitted.tokens = usage.input + usage.output }
                if let price = spec.price, let usage = reply.usage {
                    reply.costUSD = (Double(usage.input) * price.input + Double(usage.output) * price.output) / 1e6
                }
                return reply
            case .success(let response):
                let detail = Self.errorDetail(response)
                if structured == .jsonSchema, !fellBack, Self.rejectsJSONSchema(response, detail: detail) {
                    // The server does not take OpenAI's json_schema form (llama.cpp's answers 500):
                    // ask in its json_object form from now on, without spending a retry.
                    structured = .jsonObject
                    gate.structuredFallback = .jsonObject
                    fellBack = true
                    attempt -= 1
                    continue
                }
                failure = ModelCallError(.http, "HTTP \(response.status) from \(base)/chat/completions: \(detail)")
                guard response.status == 429 || response.status >= 500 else { throw failure }
                retryAfter = response.header("retry-after").flatMap(Self.seconds(retryAfter:))
            case .failure(let error):
                switch error.kind {
                case .cancelled: throw ModelCallError(.cancelled, "cancelled")
                case .tooLarge: throw ModelCallError(.badReply, "the reply was larger than \(spec.maxReplyBytes) bytes (max_reply_bytes)")
                case .invalid: throw ModelCallError(.network, error.message)
                case .timeout: failure = ModelCallError(.timeout, "no complete reply within the request's limits: \(error.message)")
                case .connect, .network: failure = ModelCallError(.network, error.message)
                }
            }
            guard attempt <= spec.retries else {
                var final = failure
                if attempt > 1 { final.message += " (after \(attempt) attempts)" }
                throw final
            }
            let backoff = spec.backoffSeconds * pow(2, Double(attempt - 1)) * Double.random(in: 0.5...1.0)
            let delay = min(max(backoff, retryAfter ?? 0), 300)
            do {
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
            } catch {
                throw ModelCallError(.cancelled, "cancelled")
            }
        }
    }

    /// The request's headers: JSON, the API key, `Idempotency-Key` (the call's key, the same when a call
    /// interrupted by a crash or a retry is sent again, for servers and proxies that deduplicate), then
    /// the plan's own headers.
    private func headers(idempotencyKey: String?) -> [(name: String, value: String)] {
        var headers: [(name: String, value: String)] = [("Content-Type", "application/json"), ("Accept", "application/json")]
        if let idempotencyKey { headers.append(("Idempotency-Key", idempotencyKey)) }
        if let key = environment[spec.apiKeyEnv], !key.isEmpty { headers.append(("Authorization", "Bearer \(key)")) }
        for name in spec.headers.keys.sorted() { headers.append((name, spec.headers[name]!)) }
        return headers
    }

    // MARK: Request and reply

    /// The request body: what is sent, and what the transcript records as sent.
    static func body(
        _ request: ModelRequest, model: String, spec: OpenAISpec, structured: OpenAISpec.StructuredOutput
    ) -> (json: JSON, bytes: [UInt8]) {
        var members: [(String, JSON)] = [
            ("model", .string(model)),
            ("messages", .array(request.messages.map(\.json))),
            ("temperature", .number(request.temperature)),
        ]
        if let tools = request.toolDefinitions { members.append(("tools", tools)) }
        if let choice = request.toolChoiceJSON { members.append(("tool_choice", choice)) }
        if let maxTokens = spec.maxTokens { members.append(("max_tokens", .int(maxTokens))) }
        if let seed = spec.seed { members.append(("seed", .int(seed))) }
        if let schema = request.responseSchema {
            switch structured {
            case .jsonSchema:
                members.append(
                    (
                        "response_format",
                        .object([
                            ("type", "json_schema"),
                            ("json_schema", .object([("name", .string("\(request.context.role.rawValue)_reply")), ("schema", schema)])),
                        ])
                    ))
            case .jsonObject:
                members.append(("response_format", .object([("type", "json_object"), ("schema", schema)])))
            case .none:
                break
            }
        }
        let json = JSON.object(members)
        var bytes: [UInt8] = []
        json.write(to: &bytes)
        return (json, bytes)
    }

    static func reply(_ response: HTTPResponse, sent: (json: JSON, bytes: [UInt8]), attempts: Int) throws(ModelCallError) -> ModelReply {
        let type = response.header("content-type") ?? "none"
        guard type.lowercased().contains("json") else {
            throw ModelCallError(.badReply, "the server answered with Content-Type \(type), expected JSON: \(snippet(response.body))")
        }
        let body: JSON
        do {
            body = try JSON.parse(response.body)
        } catch {
            throw ModelCallError(.badReply, "the reply body is not JSON (\(error)): \(snippet(response.body))")
        }
        guard let choices = body["choices"]?.arrayValue else {
            throw ModelCallError(.badReply, "the reply has no 'choices': \(snippet(response.body))")
        }
        guard let message = choices.first?["message"] else {
            throw ModelCallError(.badReply, "the reply's 'choices' is empty")
        }
        // With tool calls the content may be null; `arguments` stay as sent (the tool runner reports
        // malformed ones to the model).
        var toolCalls: [ToolCall] = []
        if let listed = message["tool_calls"], !listed.isNull, listed.arrayValue?.isEmpty != true {
            guard let calls = ToolCall.list(from: listed) else {
                throw ModelCallError(.badReply, "the reply's 'tool_calls' is not a list of function calls: \(listed.encoded.prefix(200))")
            }
            toolCalls = calls
        }
        let content: String
        if let text = message["content"]?.stringValue {
            content = text
        } else if !toolCalls.isEmpty, message["content"] == nil || message["content"]?.isNull == true {
            content = ""
        } else {
            throw ModelCallError(.badReply, "the reply's message has no text content: \(message.encoded.prefix(200))")
        }
        var usage: TokenUsage?
        if let u = body["usage"], let input = u["prompt_tokens"]?.intValue, let output = u["completion_tokens"]?.intValue {
            usage = TokenUsage(input: input, output: output)
        }
        return ModelReply(content: content, toolCalls: toolCalls, usage: usage, raw: body, sent: sent.json, attempts: attempts)
    }

    /// The server's own error message when its body has one (OpenAI's `{"error": {"message"}}`).
    static func errorDetail(_ response: HTTPResponse) -> String {
        if let body = try? JSON.parse(response.body) {
            if let message = body["error"]?["message"]?.stringValue { return message }
            if let message = body["error"]?.stringValue { return message }
            if let message = body["message"]?.stringValue { return message }
        }
        return response.body.isEmpty ? "(empty body)" : snippet(response.body)
    }

    static func rejectsJSONSchema(_ response: HTTPResponse, detail: String) -> Bool {
        guard [400, 422, 500].contains(response.status) else { return false }
        let text = detail.lowercased()
        return text.contains("json_schema") || text.contains("response_format")
    }

    /// `Retry-After` as seconds (a number of seconds, or an HTTP date).
    static func seconds(retryAfter value: String) -> Double? {
        if let seconds = Double(value.trimmingCharacters(in: .whitespaces)), seconds >= 0 { return seconds }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return max(0, date.timeIntervalSinceNow)
    }

    static func snippet(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(200), as: UTF8.self)
        return bytes.count > 200 ? text + "…" : text
    }
}
