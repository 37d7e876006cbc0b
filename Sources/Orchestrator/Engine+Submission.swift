import Store

/// Checks of a submission's own fields, made before its plan is loaded. Pure; any thread.
extension Engine.Submission {
    /// The first field that holds U+0000, as the protocol names it (`goal`, `inputs.NAME`, `cwd`,
    /// `plan_path`, `base_dir`): the kernel and the commands read such a string only up to the
    /// NUL, so what would run is not what the record says.
    var fieldWithNUL: String? {
        func hasNUL(_ value: JSON) -> Bool {
            switch value {
            case let .string(text): return text.utf8.contains(0)
            case let .array(items): return items.contains(where: hasNUL)
            case let .object(members): return members.contains { $0.0.utf8.contains(0) || hasNUL($0.1) }
            default: return false
            }
        }
        if goal.utf8.contains(0) { return "goal" }
        if let (name, _) = params.inputs.objectValue?.first(where: { $0.0.utf8.contains(0) || hasNUL($0.1) }) { return "inputs.\(name)" }
        let paths = [("cwd", params.cwd), ("plan_path", params.planPath), ("base_dir", params.baseDirectory)]
        return paths.first { $0.1?.utf8.contains(0) == true }?.0
    }
}
