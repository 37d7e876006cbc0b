import Yams

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Reads YAML text into a `YAMLNode` tree: a file of at most `maxFileBytes` of UTF-8, then the
/// document within `YAMLBounds`, composed by Yams (the only user of Yams) and handed on in agentd's
/// own types. A syntax error, a second document or a bound exceeded is a `PlanError` naming the file,
/// line and column.
///
/// Scalars are kept as written, with their tag and whether they were plain; typing them (the YAML 1.2
/// core schema) is `YAMLReader`'s. Pure functions, except `readFile`, which reads a file
/// synchronously: call it off the event loop.
public enum YAMLDocument {
    /// The single document in `yaml`, or nil when it has none (an empty file, or only comments).
    /// `file` is the name errors report.
    ///
    /// - Throws: `PlanError` for a bound exceeded (`YAMLBounds`), a syntax error, or a second document.
    public static func parse(_ yaml: String, file: String) throws(PlanError) -> YAMLNode? {
        if let violation = YAMLBounds.check(yaml) {
            throw PlanError(file: file, line: violation.line, column: violation.column, message: violation.message)
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw syntaxError(error, yaml, file: file)
        } catch {
            throw PlanError(file: file, message: "cannot parse the YAML: \(error)")
        }
        guard let root else { return nil }
        return try node(root, file: file)
    }

    /// Yams' node as agentd's. Recursion is bounded by `YAMLBounds.maxDepth`, the nodes made by
    /// `YAMLBounds.maxNodes`.
    static func node(_ node: Node, file: String) throws(PlanError) -> YAMLNode {
        switch node {
        case let .scalar(scalar):
            return .scalar(
                YAMLNode.Scalar(
                    string: scalar.string, tag: scalar.tag.rawValue, isPlain: scalar.style == .plain || scalar.style == .any,
                    mark: mark(scalar.mark)))
        case let .sequence(sequence):
            var nodes: [YAMLNode] = []
            nodes.reserveCapacity(sequence.count)
            for item in sequence { nodes.append(try self.node(item, file: file)) }
            return .sequence(YAMLNode.Sequence(nodes: nodes, mark: mark(sequence.mark)))
        case let .mapping(mapping):
            var pairs: [(key: YAMLNode, value: YAMLNode)] = []
            pairs.reserveCapacity(mapping.count)
            for (key, value) in mapping { pairs.append((try self.node(key, file: file), try self.node(value, file: file))) }
            return .mapping(YAMLNode.Mapping(pairs: pairs, mark: mark(mapping.mark)))
        case .alias:
            // Composing replaces every alias by its anchor's node; Yams makes this case only when it
            // writes YAML. Reported, not trapped: the input is someone else's.
            throw PlanError(file: file, line: node.mark?.line, column: node.mark?.column, message: "unresolved alias")
        }
    }

    private static func mark(_ mark: Mark?) -> YAMLMark? {
        mark.map { YAMLMark(line: $0.line, column: $0.column) }
    }

    /// Yams' error as a `PlanError` at the line to fix.
    static func syntaxError(_ error: YamlError, _ yaml: String, file: String) -> PlanError {
        func located(_ mark: Mark, _ problem: String, _ context: YamlError.Context?) -> PlanError {
            var message = "YAML syntax error: \(problem)"
            if let context { message += " (\(context.text), line \(context.mark.line))" }
            return PlanError(file: file, line: mark.line, column: mark.column, message: message)
        }
        switch error {
        case let .composer(_, problem, mark, _) where problem == "but found another document":
            return PlanError(
                file: file, line: mark.line, column: mark.column,
                message: "YAML error: expected a single document, found a second one")
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _),
            let .composer(context, problem, mark, _):
            return located(mark, problem, context)
        case let .duplicatedKeysInMapping(duplicates, context):
            // Yams reports where the key first appears; the repeat is the line to fix.
            let first = context.mark
            let key = duplicates.first ?? ""
            let line = repeatedKey(key, after: first, in: yaml) ?? first.line
            return PlanError(
                file: file, line: line, column: first.column,
                message: "YAML error: duplicate key '\(key)' in a mapping (first at line \(first.line))")
        case let .reader(problem, offset, _, _):
            var line = 1
            var column = 1
            if let offset {
                for character in yaml.prefix(offset) {
                    if character == "\n" || character == "\r\n" {
                        line += 1
                        column = 1
                    } else {
                        column += 1
                    }
                }
            }
            return PlanError(
                file: file, line: offset == nil ? nil : line, column: offset == nil ? nil : column,
                message: "YAML error: \(problem)")
        default:
            return PlanError(file: file, message: "YAML error: \(error)")
        }
    }

    /// The line where a block mapping repeats `key` after its first use at `first`: the next line
    /// holding `key:` at the same column. Nil when there is none (a flow mapping, say).
    static func repeatedKey(_ key: String, after first: Mark, in yaml: String) -> Int? {
        let indent = String(repeating: " ", count: first.column - 1)
        let forms = [key, "\"\(key)\"", "'\(key)'"]
        for (index, line) in yaml.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
        where index + 1 > first.line && line.hasPrefix(indent) {
            let rest = line.dropFirst(indent.count)
            for form in forms where rest.hasPrefix(form) {
                if rest.dropFirst(form.count).drop(while: { $0 == " " }).first == ":" {
                    return index + 1
                }
            }
        }
        return nil
    }

    // MARK: Files

    /// The directory part of `path` (`.` when it has none): what a file's relative paths resolve against.
    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// `path` resolved against `base` unless it is absolute or there is no base.
    public static func resolve(_ path: String, against base: String?) -> String {
        guard let base, !base.isEmpty, !path.hasPrefix("/") else { return path }
        return base.hasSuffix("/") ? base + path : base + "/" + path
    }

    /// The most a YAML file (a plan, a script file, the daemon's configuration) may hold.
    public static let maxFileBytes = 16 << 20

    /// The whole file as UTF-8 text, or the operating system's reason it cannot be read.
    ///
    /// Only a regular file of at most `maxFileBytes` is read: a path that names a device, a FIFO or a
    /// socket (`/dev/zero`, `/dev/stdin`) would never end, or never start.
    public static func readFile(_ path: String) -> Result<String, ReadFailure> {
        // Non-blocking, so that opening a FIFO with no writer returns at once; it is refused below.
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return .failure(ReadFailure(reason: String(cString: strerror(errno)))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(ReadFailure(reason: String(cString: strerror(errno)))) }
        switch info.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: return .failure(ReadFailure(reason: String(cString: strerror(EISDIR))))
        default: return .failure(ReadFailure(reason: "not a regular file"))
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return .failure(ReadFailure(reason: String(cString: strerror(errno))))
            }
            if count == 0 { break }
            // The size fstat gave may be out of date (the file can grow while it is read).
            guard bytes.count + count <= maxFileBytes else {
                return .failure(ReadFailure(reason: "larger than \(maxFileBytes >> 20) MiB"))
            }
            bytes.append(contentsOf: chunk[0..<count])
        }
        let invalid = transcode(bytes.makeIterator(), from: UTF8.self, to: UTF32.self, stoppingOnError: true) { _ in }
        guard !invalid else { return .failure(ReadFailure(reason: "not valid UTF-8")) }
        return .success(String(decoding: bytes, as: UTF8.self))
    }

    /// Why a file could not be read, in the operating system's words.
    public struct ReadFailure: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }
}
