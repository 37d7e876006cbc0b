/// Builds a validated `Plan` from a plan file (YAML; JSON is accepted too, being YAML): the entry
/// points. `YAMLDocument` reads the text (within `YAMLBounds`), `PlanReader` and its extensions check
/// the plan's fields (the schema), on the typed reads of `YAMLReader`.
///
/// Validation is complete and strict: required keys must be present, unknown keys are errors (the
/// message lists the allowed ones), values must have the documented type and range, and every role
/// must name a model the plan defines. The first problem found is thrown as a `PlanError` carrying the
/// file, the line and column of the offending YAML node and the dotted path of the field. The format
/// is documented in `plans/README.md`.
///
/// Both entry points read files synchronously (`load` the plan, both of them any `script_file`): call
/// them at start-up or off the event loop, never on it.
public enum PlanLoader {
    /// Reads and validates the plan at `path`; `script_file`s are resolved against the plan file's
    /// directory.
    ///
    /// - Throws: `PlanError` naming `path` and the operating system's reason when the file cannot be
    ///   read, or the first problem in its content.
    public static func load(path: String) throws(PlanError) -> Plan {
        let text: String
        switch YAMLDocument.readFile(path) {
        case let .success(contents): text = contents
        case let .failure(reason): throw PlanError(file: path, message: "cannot read the plan file: \(reason)")
        }
        return try parse(yaml: text, file: path, baseDirectory: YAMLDocument.directory(of: path))
    }

    /// Validates the plan in `yaml`.
    ///
    /// - Parameters:
    ///   - file: The name errors report (a path, or a label such as `<snapshot>`).
    ///   - baseDirectory: What relative `script_file` paths are resolved against; nil means the
    ///     process's working directory.
    ///   - readsFiles: Whether the plan may name files the daemon reads (`script_file`, `ca_file`);
    ///     false for a plan sent by someone other than the daemon's owner.
    /// - Throws: `PlanError` for a YAML syntax error or the first invalid field.
    public static func parse(yaml: String, file: String, baseDirectory: String?, readsFiles: Bool = true) throws(PlanError) -> Plan {
        let reader = PlanReader(file: file, baseDirectory: baseDirectory, readsFiles: readsFiles)
        let root = try reader.document(yaml, what: "a plan")
        return try reader.plan(root)
    }
}
