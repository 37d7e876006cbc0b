import Store

extension PlanReader {
    static let gateKeys = ["tool", "command", "args", "path", "review", "min_confidence"]

    /// `gates`: a list of rules, each naming the tool it gates (`*` for any), optionally narrowed by
    /// the command, its arguments or the path, and who reviews. Only an actor with tools has calls to
    /// gate; a condition the gated tool cannot have (`command` on `write_file`) is an error rather
    /// than a rule that never matches.
    /// A jury does not review gates: a rule the critic reviews needs a plan with one critic.
    func gates(_ field: YAMLField, actorTools: [String], critic: CriticSpec) throws(PlanError) -> [GateRule] {
        guard !actorTools.isEmpty else {
            throw fail(field.mark, field.path, "gates review the actor's tool calls, and the actor has no tools")
        }
        var rules: [GateRule] = []
        for (index, node) in try list(field, what: "a list of gate rules").enumerated() {
            let item = field.item(index, node)
            let entries = try mapping(item, allowed: Self.gateKeys, what: "a gate rule")
            let toolField = try require(entries, "tool")
            let tool = try nonEmptyString(toolField)
            guard tool == "*" || actorTools.contains(tool) else {
                throw fail(
                    toolField.mark, toolField.path,
                    "'\(tool)' is not one of the actor's tools (\(actorTools.joined(separator: ", "))); use one of them or '*'")
            }
            var rule = GateRule(tool: tool)
            for (key, applies) in [("command", ToolName.runCommand), ("args", .runCommand), ("path", .readFile)] {
                guard let f = entries[key] else { continue }
                let fits = tool == "*" || tool == applies.rawValue || (key == "path" && tool == ToolName.writeFile.rawValue)
                guard fits else {
                    throw fail(
                        f.mark, f.path,
                        "'\(key)' does not apply to \(tool) (only to \(key == "path" ? "read_file and write_file" : "run_command"))")
                }
                let values = try nonEmptyStrings(f, what: "a list of strings")
                guard !values.isEmpty else { throw fail(f.mark, f.path, "expected at least one string") }
                switch key {
                case "command": rule.commands = values
                case "args": rule.arguments = values
                default: rule.paths = values
                }
            }
            if let f = entries["review"] {
                let word = try nonEmptyString(f)
                guard let review = GateRule.Review(rawValue: word) else {
                    throw fail(
                        f.mark, f.path,
                        "unknown review '\(word)' (known: \(GateRule.Review.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                if review == .critic || review == .criticThenHuman, case .jury = critic {
                    throw fail(
                        f.mark, f.path,
                        "a jury does not review gates; use review: human or none, or a single critic (a model or a command) for review: \(word)"
                    )
                }
                rule.review = review
            }
            if let f = entries["min_confidence"] {
                guard rule.review == .criticThenHuman else {
                    throw fail(f.mark, f.path, "'min_confidence' applies only to review: critic_then_human")
                }
                rule.minConfidence = try number(f, in: 0...1)
            }
            rules.append(rule)
        }
        return rules
    }
}
