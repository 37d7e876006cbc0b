import Store

/// A `scripted` model's rules, inline or from a `script_file`, and their replies as JSON.
extension PlanReader {
    /// The scripted model's rules, from `script` or from the file `script_file` names (exactly one).
    func script(of entries: YAMLEntries) throws(PlanError) -> Script {
        switch (entries["script"], entries["script_file"]) {
        case let (inline?, nil):
            return try script(inline)
        case let (nil, fileField?):
            try allowFiles(fileField)
            let path = YAMLDocument.resolve(try nonEmptyString(fileField), against: baseDirectory)
            let text: String
            switch YAMLDocument.readFile(path) {
            case let .success(contents): text = contents
            case let .failure(failure):
                throw fail(fileField.mark, fileField.path, "cannot read the script file '\(path)': \(failure.reason)")
            }
            let reader = PlanReader(file: path, baseDirectory: YAMLDocument.directory(of: path))
            return try reader.script(reader.document(text, what: "a mapping of roles to lists of rules"))
        case let (inline?, fileField?):
            let later = entries.index(of: "script")! > entries.index(of: "script_file")! ? inline : fileField
            throw fail(later.keyMark, later.path, "give either 'script' or 'script_file', not both")
        case (nil, nil):
            throw fail(entries.field.ownerMark, entries.field.path, "a scripted model needs 'script' or 'script_file'")
        }
    }

    func script(_ field: YAMLField) throws(PlanError) -> Script {
        let entries = try mapping(field, allowed: Role.allCases.map(\.rawValue), what: "a script")
        var rules: [Role: [ScriptRule]] = [:]
        for entry in entries.entries {
            let roleField = field.child(entry.name, entry.value, keyMark: entry.key.mark)
            var list: [ScriptRule] = []
            for (index, node) in try self.list(roleField, what: "a list of rules").enumerated() {
                list.append(try rule(roleField.item(index, node)))
            }
            rules[Role(rawValue: entry.name)!] = list
        }
        return Script(rules: rules)
    }

    func rule(_ field: YAMLField) throws(PlanError) -> ScriptRule {
        let entries = try mapping(field, allowed: Self.ruleKeys, what: "a rule")
        let reply: ScriptReply
        switch (entries["reply"], entries["raw"]) {
        case let (value?, nil): reply = .json(try json(value))
        case let (nil, raw?): reply = .raw(try string(raw))
        case let (value?, raw?):
            let later = entries.index(of: "reply")! > entries.index(of: "raw")! ? value : raw
            throw fail(later.keyMark, later.path, "give either 'reply' or 'raw', not both")
        case (nil, nil):
            throw fail(field.mark, field.path, "a rule needs 'reply' (a value) or 'raw' (a string)")
        }
        return ScriptRule(
            steps: try entries["step"].map { (f) throws(PlanError) in try indexSet(f) },
            attempts: try entries["attempt"].map { (f) throws(PlanError) in try indexSet(f) },
            replans: try entries["replan"].map { (f) throws(PlanError) in try indexSet(f) },
            reasks: try entries["reask"].map { (f) throws(PlanError) in try indexSet(f) },
            feedback: try entries["feedback"].map { (f) throws(PlanError) in try bool(f) },
            turns: try entries["turn"].map { (f) throws(PlanError) in try indexSet(f) },
            samples: try entries["sample"].map { (f) throws(PlanError) in try indexSet(f) },
            gate: try entries["gate"].map { (f) throws(PlanError) in try bool(f) },
            reply: reply)
    }

    /// A rule condition: one zero-based index or a non-empty list of them.
    func indexSet(_ field: YAMLField) throws(PlanError) -> Set<Int> {
        if case .sequence = field.node {
            let items = try list(field, what: "an index or a list of indexes")
            guard !items.isEmpty else { throw fail(field.mark, field.path, "an empty list never matches; leave the key out to match any") }
            var set = Set<Int>()
            for (index, node) in items.enumerated() {
                set.insert(try int(field.item(index, node), in: 0...Int.max))
            }
            return set
        }
        return [try int(field, in: 0...Int.max, expected: "an index (integer >= 0) or a list of them")]
    }

    /// always within the bound too (a job's plan is loaded again from its snapshot).
    static let maxReplyDepth = 64

    /// Any YAML value as JSON: mappings keep their key order, integers become numbers. `depth` is the
    /// value's own level (1 for a reply).
    func json(_ field: YAMLField, depth: Int = 1) throws(PlanError) -> JSON {
        budget.values -= 1
        guard budget.values >= 0 else {
            throw fail(field.mark, field.path, "the replies hold more than 100000 values (do aliases expand exponentially?)")
        }
        if depth > Self.maxReplyDepth {
            switch field.node {
            case .sequence, .mapping:
                throw fail(
                    field.mark, field.path, "a reply nests lists and mappings more than \(Self.maxReplyDepth) levels deep (the limit)")
            default: break
            }
        }
        switch field.node {
        case let .scalar(scalar):
            switch try resolve(scalar, field) {
            case .null: return .null
            case let .bool(value): return .bool(value)
            case let .integer(value): return .number(value)
            case let .float(value):
                guard value.isFinite else { throw fail(field.mark, field.path, "JSON has no infinity or NaN") }
                return .number(value)
            case let .string(text): return .string(text)
            }
        case let .sequence(sequence):
            var items: [JSON] = []
            for (index, node) in sequence.nodes.enumerated() { items.append(try json(field.item(index, node), depth: depth + 1)) }
            return .array(items)
        case .mapping:
            let entries = try mapping(field, allowed: nil, what: "an object")
            var members: [(String, JSON)] = []
            for entry in entries.entries {
                members.append((entry.name, try json(field.child(entry.name, entry.value, keyMark: entry.key.mark), depth: depth + 1)))
            }
            return .object(members)
        }
    }
}
