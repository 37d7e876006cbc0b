// libyaml itself, for its event parser: Yams composes a whole document before anyone can look at it,
// and composing is where the unbounded work is (see `YAMLBounds`).
internal import CYaml

/// The most work a YAML document may ask of the reader, checked on libyaml's events before Yams
/// composes the document, so that no file of at most `PlanLoader.maxFileBytes` holds a thread for long.
///
/// What composing can cost, and the bound on each:
///
/// - **Complex keys** (a list or a mapping as a mapping key, directly or through an alias): Yams checks
///   every mapping for duplicate keys by hashing them, which walks a collection key whole, at every
///   level it is nested in; and on a duplicate it sorts the keys with a comparison that evaluates both
///   `<` and `>` of each pair of children, so comparing two nested keys costs 2^depth. Which keys it
///   compares follows the order of a `Dictionary`, which differs in each process (Swift seeds its
///   hashes at random): the same file failed in milliseconds in one run and took minutes in the next.
///   No document agentd reads has a use for them (a key is a plain string), so they are refused.
/// - **Nesting**: composing recurses once per level; refused past `maxDepth` levels.
/// - **Aliases**: an alias stands for its anchor's whole node, so a few hundred bytes of aliases of
///   aliases stand for billions of nodes (the "billion laughs"). Yams shares them, but everything that
///   reads the document walks them; refused when the document, aliases expanded, holds more than
///   `maxNodes` nodes.
/// - **Mapping size**: with scalar keys only, Yams' duplicate check hashes each key once (linear), and
///   a mapping's entries count towards `maxNodes`; no bound of its own is needed.
///
/// Only the first document is checked: Yams composes nothing after it (a second one is an error). A
/// syntax error ends the check early; Yams then reports it, having composed no more than was checked.
/// Runs on the caller's thread; reads nothing but `yaml`.
enum YAMLBounds {
    /// The deepest nesting of lists and mappings a document may have (the root collection is level 1).
    static let maxDepth = 100
    /// The most nodes a document may hold with every alias replaced by the node it stands for.
    static let maxNodes = 1_000_000

    /// A bound the document exceeds: what, and where libyaml saw it (1-based).
    struct Violation: Error, Equatable {
        let line: Int
        let column: Int
        let message: String
    }

    /// The first bound `yaml` exceeds, or nil when it keeps them all (or has a syntax error first).
    static func check(_ yaml: String) -> Violation? {
        var yaml = yaml
        return yaml.withUTF8 { check(bytes: $0) }
    }

    /// An open list or mapping: its expanded node count so far, its anchor, and (for a mapping) how many
    /// of its keys and values have been seen, so the next child is known to be a key or a value.
    private struct Open {
        let isMapping: Bool
        let anchor: String?
        var nodes = 1
        var children = 0
    }

    /// What an anchor stands for: its expanded node count and whether it is a collection.
    private struct Anchored {
        let nodes: Int
        let isCollection: Bool
    }

    private static func check(bytes: UnsafeBufferPointer<UInt8>) -> Violation? {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return nil }
        defer { yaml_parser_delete(&parser) }
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, bytes.baseAddress ?? UnsafePointer(bitPattern: 1), bytes.count)

        var open: [Open] = []
        var anchors: [String: Anchored] = [:]
        var total = 0
        var event = yaml_event_t()
        while true {
            // A syntax error: Yams reports it, having composed no more than this saw.
            guard yaml_parser_parse(&parser, &event) == 1 else { return nil }
            defer { yaml_event_delete(&event) }
            let mark = event.start_mark
            func violation(_ message: String) -> Violation {
                Violation(line: mark.line + 1, column: mark.column + 1, message: message)
            }
            // Whether the node this event starts is a mapping key.
            let isKey = open.last.map { $0.isMapping && $0.children % 2 == 0 } ?? false
            // A node that ended (a scalar, an alias or a closed collection): its expanded size, its anchor.
            let ended: (nodes: Int, anchor: String?, isCollection: Bool)
            switch event.type {
            case YAML_DOCUMENT_END_EVENT, YAML_STREAM_END_EVENT:
                return nil
            case YAML_SCALAR_EVENT:
                total += 1
                ended = (1, string(event.data.scalar.anchor), false)
            case YAML_ALIAS_EVENT:
                // An undefined alias: Yams reports it.
                guard let name = string(event.data.alias.anchor), let anchored = anchors[name] else { return nil }
                if isKey && anchored.isCollection {
                    return violation(
                        "YAML error: a mapping key is an alias of a list or mapping (complex keys are refused: a key must be a plain string)"
                    )
                }
                total += anchored.nodes
                ended = (anchored.nodes, nil, false)
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                let isMapping = event.type == YAML_MAPPING_START_EVENT
                if isKey {
                    let what = isMapping ? "a mapping" : "a list"
                    return violation("YAML error: a mapping key is \(what) (complex keys are refused: a key must be a plain string)")
                }
                guard open.count < maxDepth else {
                    return violation("YAML error: lists and mappings nested more than \(maxDepth) levels deep (the limit)")
                }
                total += 1
                let anchor = isMapping ? string(event.data.mapping_start.anchor) : string(event.data.sequence_start.anchor)
                open.append(Open(isMapping: isMapping, anchor: anchor))
                continue
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let closed = open.popLast() else { return nil }
                ended = (closed.nodes, closed.anchor, true)
            default:
                continue
            }
            if total > maxNodes {
                return violation("YAML error: the document, aliases expanded, holds more than \(maxNodes) values (the limit)")
            }
            if let anchor = ended.anchor { anchors[anchor] = Anchored(nodes: ended.nodes, isCollection: ended.isCollection) }
            if var parent = open.popLast() {
                // At most `maxNodes` + 1 by the check above, so the sum cannot overflow.
                parent.nodes = min(parent.nodes + ended.nodes, maxNodes + 1)
                parent.children += 1
                open.append(parent)
            }
        }
    }

    private static func string(_ pointer: UnsafeMutablePointer<UInt8>?) -> String? {
        pointer.map { String(cString: $0) }
    }
}
