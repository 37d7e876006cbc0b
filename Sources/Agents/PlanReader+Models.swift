/// The plan's models: `models` by name, each `scripted`, `command` or `openai`, and what an
/// `openai` model sets.
extension PlanReader {
    func models(_ field: YAMLField) throws(PlanError) -> ([String: ModelSpec], [String]) {
        let entries = try mapping(field, allowed: nil, what: "the models (model name -> model)")
        guard !entries.entries.isEmpty else { throw fail(field.mark, field.path, "expected at least one model") }
        var models: [String: ModelSpec] = [:]
        var names: [String] = []
        for entry in entries.entries {
            let model = field.child(entry.name, entry.value, keyMark: entry.key.mark)
            guard !entry.name.isEmpty else { throw fail(entry.key.mark, model.path, "a model name must not be empty") }
            models[entry.name] = try self.model(model)
            names.append(entry.name)
        }
        return (models, names)
    }

    func model(_ field: YAMLField) throws(PlanError) -> ModelSpec {
        let entries = try mapping(field, allowed: nil, what: "a model")
        let backendField = try require(entries, "backend")
        switch try string(backendField) {
        case "scripted":
            try check(entries, allowed: ["backend", "script", "script_file"], what: "a scripted model")
            return ModelSpec(backend: .scripted(try script(of: entries)))
        case "command":
            try check(entries, allowed: ["backend"] + Self.commandKeys, what: "a command model")
            return ModelSpec(backend: .command(try command(entries, defaultTimeout: 120)))
        case "openai":
            try check(entries, allowed: ["backend"] + Self.openAIKeys, what: "an openai model")
            return ModelSpec(backend: .openai(try openAI(entries)))
        case let other:
            throw fail(backendField.mark, backendField.path, "unknown backend '\(other)' (allowed: scripted, command, openai)")
        }
    }

    static let openAIKeys = [
        "base_url", "ca_file", "model", "api_key_env", "headers", "structured_output", "max_tokens", "seed", "timeout",
        "connect_timeout", "idle_timeout", "retries", "backoff", "max_concurrent", "max_reply_bytes", "price",
        "requests_per_minute", "tokens_per_minute", "rate_window",
    ]

    func openAI(_ entries: YAMLEntries) throws(PlanError) -> OpenAISpec {
        var spec = OpenAISpec(model: try entries["model"].map { (f) throws(PlanError) in try nonEmptyString(f) })
        if let f = entries["base_url"] {
            let url = try nonEmptyString(f)
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
                throw fail(f.mark, f.path, "expected an http:// or https:// URL, found '\(url)'")
            }
            spec.baseURL = url
        }
        if let f = entries["ca_file"] {
            try allowFiles(f)
            spec.caFile = YAMLDocument.resolve(try nonEmptyString(f), against: baseDirectory)
        }
        if let f = entries["api_key_env"] { spec.apiKeyEnv = try variableName(f) }
        if let f = entries["headers"] {
            let headers = try mapping(f, allowed: nil, what: "headers (name -> value)")
            for entry in headers.entries {
                let field = f.child(entry.name, entry.value, keyMark: entry.key.mark)
                if entry.name.lowercased() == "authorization" {
                    throw fail(
                        entry.key.mark, field.path, "the API key is read from the variable 'api_key_env' names; do not put it in a plan")
                }
                spec.headers[entry.name] = try string(field)
            }
        }
        if let f = entries["structured_output"] {
            let text = try string(f)
            guard let mode = OpenAISpec.StructuredOutput(rawValue: text) else {
                let allowed = OpenAISpec.StructuredOutput.allCases.map(\.rawValue).joined(separator: ", ")
                throw fail(f.mark, f.path, "unknown structured_output '\(text)' (allowed: \(allowed))")
            }
            spec.structuredOutput = mode
        }
        if let f = entries["max_tokens"] { spec.maxTokens = try int(f, in: 1...10_000_000) }
        if let f = entries["seed"] { spec.seed = try int(f, in: Int(Int32.min)...Int(Int32.max)) }
        if let f = entries["timeout"] { spec.timeoutSeconds = try duration(f, allowZero: false) }
        if let f = entries["connect_timeout"] { spec.connectTimeoutSeconds = try duration(f, allowZero: false) }
        if let f = entries["idle_timeout"] { spec.idleTimeoutSeconds = try duration(f, allowZero: false) }
        if let f = entries["retries"] { spec.retries = try int(f, in: 0...20) }
        if let f = entries["backoff"] { spec.backoffSeconds = try duration(f, allowZero: true) }
        if let f = entries["max_concurrent"] { spec.maxConcurrent = try int(f, in: 1...4096) }
        if let f = entries["max_reply_bytes"] { spec.maxReplyBytes = try int(f, in: 1024...(1 << 30)) }
        if let f = entries["requests_per_minute"] { spec.requestsPerMinute = try int(f, in: 1...10_000_000) }
        if let f = entries["tokens_per_minute"] { spec.tokensPerMinute = try int(f, in: 1...1_000_000_000) }
        if let f = entries["rate_window"] { spec.rateWindowSeconds = try duration(f, allowZero: false) }
        if let f = entries["price"] {
            let price = try mapping(f, allowed: ["input", "output"], what: "a price (US dollars per million tokens)")
            spec.price = (
                input: try number(try require(price, "input"), in: 0...1_000_000),
                output: try number(try require(price, "output"), in: 0...1_000_000)
            )
        }
        return spec
    }

    /// Refuses a field that names a file when the plan may not (`readsFiles`).
    func allowFiles(_ field: YAMLField) throws(PlanError) {
        guard readsFiles else {
            throw fail(
                field.ownerMark, field.path,
                "permission denied: a plan from a user other than the daemon's owner may not name files the daemon would read; inline it (rule: submitters.plan_files)"
            )
        }
    }
}
