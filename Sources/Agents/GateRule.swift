import Foundation

/// One of a plan's `gates`: which proposed tool calls must be reviewed before they run, and who
/// reviews them. The first rule that matches a call gates it. Pure value; any thread.
public struct GateRule: Sendable, Equatable {
    /// Who decides whether a gated call runs.
    public enum Review: String, Sendable, CaseIterable {
        /// The plan's critic judges the proposed call (pass approves, fail blocks with feedback).
        case critic
        /// A person approves or rejects it (`agentd approve` / `agentd reject`).
        case human
        /// The critic first; a person when the critic blocks or its confidence is below
        /// `minConfidence`.
        case criticThenHuman = "critic_then_human"
        /// Nobody: the call runs at once. For exceptions ahead of a broader rule.
        case none
    }

    /// A tool name, or `*` for every tool.
    public var tool: String
    /// `run_command` only: the program (argv[0], or its last path component) is one of these.
    public var commands: [String]?
    /// `run_command` only: some argument after the program is one of these.
    public var arguments: [String]?
    /// `read_file` / `write_file` only: the path matches one of these globs (`fnmatch`, `*` not
    /// crossing `/`; `**/` any directories).
    public var paths: [String]?
    public var review: Review
    /// For `critic_then_human`: a critic's approval with a confidence below this goes to a person too.
    public var minConfidence: Double
    public static let defaultMinConfidence = 0.8

    public init(
        tool: String, commands: [String]? = nil, arguments: [String]? = nil, paths: [String]? = nil, review: Review = .human,
        minConfidence: Double = GateRule.defaultMinConfidence
    ) {
        self.tool = tool
        self.commands = commands
        self.arguments = arguments
        self.paths = paths
        self.review = review
        self.minConfidence = minConfidence
    }

    /// Whether the rule gates a call of `tool` with `argv` (run_command) or `path` (the file tools).
    public func matches(tool name: String, argv: [String]?, path: String?) -> Bool {
        guard tool == "*" || tool == name else { return false }
        if let commands {
            guard let program = argv?.first else { return false }
            let base = program.split(separator: "/").last.map(String.init) ?? program
            guard commands.contains(program) || commands.contains(base) else { return false }
        }
        if let arguments {
            guard let rest = argv?.dropFirst(), rest.contains(where: arguments.contains) else { return false }
        }
        if let paths {
            guard let path, paths.contains(where: { Self.glob($0, matches: path) }) else { return false }
        }
        return true
    }

    /// `fnmatch` with `FNM_PATHNAME`, where a leading `**/` also matches no directory at all.
    static func glob(_ pattern: String, matches path: String) -> Bool {
        if fnmatch(pattern, path, FNM_PATHNAME) == 0 { return true }
        if pattern.hasPrefix("**/") { return glob(String(pattern.dropFirst(3)), matches: path) || matchesAnyDepth(pattern, path) }
        return false
    }

    /// `**/rest` against `path` and every suffix of it after a `/`.
    private static func matchesAnyDepth(_ pattern: String, _ path: String) -> Bool {
        let rest = String(pattern.dropFirst(3))
        var remainder = Substring(path)
        while let slash = remainder.firstIndex(of: "/") {
            remainder = remainder[remainder.index(after: slash)...]
            if fnmatch(rest, String(remainder), FNM_PATHNAME) == 0 { return true }
        }
        return false
    }
}
