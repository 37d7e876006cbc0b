/// A YAML document as agentd's readers see it: scalars, lists and mappings, each with where it starts
/// in the file. Aliases are already replaced by the nodes they stand for (`YAMLBounds` bounds how many
/// that makes), and mapping keys are scalars (complex keys are refused). No Yams type crosses this
/// seam: `YAMLDocument` is the only reader of Yams.
public enum YAMLNode: Sendable {
    case scalar(Scalar)
    case sequence(Sequence)
    case mapping(Mapping)

    /// A scalar's text as written (quotes and escapes resolved), and what decides its type.
    public struct Scalar: Sendable {
        public let string: String
        /// The explicit tag, resolved (`tag:yaml.org,2002:int` for `!!int`); `!` for the non-specific
        /// tag; empty when there is none.
        public let tag: String
        /// Plain (neither quoted nor a block scalar): only a plain scalar without a tag is typed by the
        /// core schema; any other is a string.
        public let isPlain: Bool
        public let mark: YAMLMark?
    }

    /// A list's items in order.
    public struct Sequence: Sendable {
        public let nodes: [YAMLNode]
        public let mark: YAMLMark?
    }

    /// A mapping's entries in document order.
    public struct Mapping: Sendable {
        public let pairs: [(key: YAMLNode, value: YAMLNode)]
        public let mark: YAMLMark?
    }

    /// Where the node starts.
    public var mark: YAMLMark? {
        switch self {
        case let .scalar(scalar): return scalar.mark
        case let .sequence(sequence): return sequence.mark
        case let .mapping(mapping): return mapping.mark
        }
    }
}

/// A position in a YAML file, 1-based.
public struct YAMLMark: Sendable, Equatable {
    public let line: Int
    public let column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
}
