import ArgumentParser

/// A mistyped command name, caught before the argument parser sees the command line.
///
/// Without this, `agentd sumbit plan.yaml --goal x` is parsed as the root command with stray
/// arguments, and the parser names the first thing it cannot place — `Unknown option '--goal'` —
/// rather than the word that was wrong. Runs on the main thread, before any command.
enum MistypedCommand {
    /// The error for `arguments` (the command line without the program) when a word that must name a
    /// subcommand names none, with the nearest command when one is close; nil when every such word
    /// is a command (or the first option comes before one: the parser explains those itself).
    static func message(for arguments: [String], root: ParsableCommand.Type) -> String? {
        var command = root
        var path: [String] = []
        for argument in arguments {
            let configuration = command.configuration
            // A command without subcommands, or with a default one, takes its own arguments.
            guard !argument.hasPrefix("-"), !configuration.subcommands.isEmpty, configuration.defaultSubcommand == nil,
                argument != "help"
            else { return nil }
            if let next = configuration.subcommands.first(where: {
                $0._commandName == argument || $0.configuration.aliases.contains(argument)
            }) {
                command = next
                path.append(argument)
                continue
            }
            let names = configuration.subcommands.filter { $0.configuration.shouldDisplay }.map { $0._commandName }
            let parent = (["agentd"] + path).joined(separator: " ")
            let unknown = (path + [argument]).joined(separator: " ")
            if let nearest = nearest(to: argument, among: names) {
                return
                    "'\(unknown)' is not a command; did you mean '\((path + [nearest]).joined(separator: " "))'? ('\(parent) --help' lists them)"
            }
            return "'\(unknown)' is not a command; '\(parent)' has: \(names.joined(separator: ", "))"
        }
        return nil
    }

    /// The name `word` is a slip for: the only one it begins (`sub` → `submit`), else the closest one
    /// within two edits (a swap of two neighbours counts as one) and fewer edits than the name's length.
    static func nearest(to word: String, among names: [String]) -> String? {
        let prefixed = names.filter { $0.hasPrefix(word) }
        if word.count >= 2, prefixed.count == 1 { return prefixed[0] }
        let scored = names.map { (name: $0, distance: editDistance(word, $0)) }
        guard let best = scored.min(by: { $0.distance < $1.distance }), best.distance <= 2, best.distance < best.name.count else {
            return nil
        }
        return best.name
    }

    /// The optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
    /// adjacent characters, each one edit.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let s = Array(a)
        let t = Array(b)
        if s.isEmpty || t.isEmpty { return max(s.count, t.count) }
        var d = [[Int]](repeating: [Int](repeating: 0, count: t.count + 1), count: s.count + 1)
        for i in 0...s.count { d[i][0] = i }
        for j in 0...t.count { d[0][j] = j }
        for i in 1...s.count {
            for j in 1...t.count {
                let cost = s[i - 1] == t[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, s[i - 1] == t[j - 2], s[i - 2] == t[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[s.count][t.count]
    }
}
