/// Why a plan file (or the daemon's configuration file, which the same reader validates) was rejected:
/// where (file, line, column), which field, and what is wrong.
///
/// Printed like a compiler diagnostic, leaving out the parts that are unknown:
///
///     plans/x.yaml:12:5: roles.critic.model: unknown model 'gpt' (known: script)
///
/// `field` is a dotted path from the document's root (`roles.critic.model`, `steps[2]`,
/// `models.script.script.critic[0].reply`); it is empty for errors about the whole file, such as a
/// file that cannot be read or a YAML syntax error. `line` and `column` count from 1; they are nil
/// when no position applies (an unreadable file). Pure value type.
public struct PlanError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file the error is in, as the caller named it (a script file's errors name the script file).
    public var file: String
    /// One-based line of the offending node, when known.
    public var line: Int?
    /// One-based column of the offending node, when known (counted in Unicode scalars).
    public var column: Int?
    /// Dotted path of the offending field; empty for errors about the whole file.
    public var field: String
    /// What is wrong, and where it helps, what was expected or allowed.
    public var message: String

    public init(file: String, line: Int? = nil, column: Int? = nil, field: String = "", message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.field = field
        self.message = message
    }

    /// `FILE:LINE:COL: FIELD: MESSAGE`; a missing file name, position or field is left out with its
    /// separator (a column is only printed after a line).
    public var description: String {
        var location = file
        if let line {
            location += location.isEmpty ? "\(line)" : ":\(line)"
            if let column { location += ":\(column)" }
        }
        var parts: [String] = []
        if !location.isEmpty { parts.append(location) }
        if !field.isEmpty { parts.append(field) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }
}
