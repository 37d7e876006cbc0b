import Store

/// A jury critic: `critic: {jury: [JUROR, …], rule, on_error}`, each juror a model role or a command
/// critic with an optional `name` (see `JurySpec`).
extension PlanReader {
    static let juryKeys = ["jury", "rule", "on_error"]

    func jury(_ field: YAMLField, _ models: [String: ModelSpec], _ modelNames: [String]) throws(PlanError) -> JurySpec {
        let entries = try mapping(field, allowed: nil, what: "a critic")
        try check(entries, allowed: Self.juryKeys, what: "a jury critic", note: "; a critic is a jury, a command or a model role")
        let listField = try require(entries, "jury")
        let items = try list(listField, what: "a list of jurors")
        guard !items.isEmpty else { throw fail(listField.mark, listField.path, "a jury needs at least one juror") }
        guard items.count <= JurySpec.maxJurors else {
            throw fail(listField.mark, listField.path, "a jury has at most \(JurySpec.maxJurors) jurors, found \(items.count)")
        }
        var jurors: [Juror] = []
        for (index, node) in items.enumerated() {
            let item = listField.item(index, node)
            let juror = try self.juror(item, index: index, models, modelNames)
            if let other = jurors.firstIndex(where: { $0.name == juror.name }) {
                let at = (try? mapping(item, allowed: nil, what: "a juror"))?["name"] ?? item
                throw fail(
                    at.mark, at.path,
                    "juror \(index + 1) is named '\(juror.name)' like juror \(other + 1); each juror needs its own name (one without 'name' is juror1…jurorN by its position)"
                )
            }
            jurors.append(juror)
        }
        let ruleField = try require(entries, "rule")
        let word = try nonEmptyString(ruleField)
        guard let rule = JurySpec.Rule(text: word) else {
            throw fail(ruleField.mark, ruleField.path, "unknown jury rule '\(word)' (known: \(JurySpec.Rule.known))")
        }
        if case let .meanScore(threshold) = rule, !(0...1).contains(threshold) {
            throw fail(
                ruleField.mark, ruleField.path, "the mean score to reach must be from 0 to 1, found \(JSON.number(threshold).encoded)")
        }
        var spec = JurySpec(jurors: jurors, rule: rule)
        if let f = entries["on_error"] {
            let word = try nonEmptyString(f)
            guard let onError = JurySpec.OnError(rawValue: word) else {
                throw fail(
                    f.mark, f.path,
                    "unknown on_error '\(word)' (known: fail (an erring juror votes fail), abstain (it is left out of the count))")
            }
            spec.onError = onError
        }
        return spec
    }

    /// One juror: `name` (optional) beside a model role's keys or a command critic's.
    private func juror(_ item: YAMLField, index: Int, _ models: [String: ModelSpec], _ modelNames: [String]) throws(PlanError)
        -> Juror
    {
        let entries = try mapping(item, allowed: nil, what: "a juror")
        var name = "juror\(index + 1)"
        if let f = entries["name"] {
            name = try nonEmptyString(f)
            guard Juror.isValidName(name) else {
                throw fail(f.mark, f.path, "a juror's name is 1 to 64 letters, digits, '_', '-' or '.', found '\(name)'")
            }
            guard name != Juror.reservedName else {
                throw fail(
                    f.mark, f.path, "'\(name)' names the plan's ground-truth check's agent (critic/JOB/check); give the juror another name")
            }
        }
        let rest = YAMLEntries(field: item, entries: entries.entries.filter { $0.name != "name" })
        if rest.has("command") {
            try check(
                rest, allowed: Self.commandKeys + ["name"], what: "a command juror",
                note: "; a juror is either a command or a model role, not both")
            return Juror(name: name, kind: .command(try command(rest, defaultTimeout: 300)))
        }
        try check(
            rest, allowed: Self.roleKeys + ["name"], what: "a model juror",
            note: "; a command juror has 'command', 'cwd', 'timeout', 'sandbox' and 'env'")
        // A snapshot writes `tools: []`; only a juror given tools is refused.
        if let f = rest["tools"], case let .sequence(items) = f.node, !items.nodes.isEmpty {
            throw fail(f.ownerMark, f.path, "a juror has no tools (a single model critic may have read-only tools); leave 'tools' out")
        }
        return Juror(name: name, kind: .model(try role(rest, models, modelNames)))
    }
}
