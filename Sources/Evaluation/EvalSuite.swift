import Foundation
import Store

/// Why a suite, an arm or an eval's state cannot be used: one line naming the file and the problem.
public struct EvalError: Error, Sendable, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}

/// One task of a suite: what a job is asked, and how the eval decides whether its result is correct.
public struct EvalTask: Sendable, Equatable {
    /// Unique in the suite; letters, digits, `.`, `_` and `-`.
    public var id: String
    public var goal: String
    public var inputs: JSON
    /// A directory (relative to the suite's) copied as each job's workspace; nil for none.
    public var workspace: String?
    /// The ground truth: argv run in the suite's directory; exit status 0 means correct. It reads the
    /// job's final step outputs from `AGENTD_STEP_OUTPUTS` and its workspace at `AGENTD_WORKSPACE`.
    public var check: [String]
    /// The ground truth of one attempt at a step: argv run like a command critic (`AGENTD_STEP_OUTPUT`,
    /// `AGENTD_STEP`, `AGENTD_STEP_INDEX`, `AGENTD_ATTEMPT`). Without it an attempt is judged by
    /// `check`, as though its output were the job's only one (exact for one-step tasks).
    public var stepCheck: [String]?
    /// How long one check may run, in seconds.
    public var timeoutSeconds: Double
    /// The task's line as written, so that an edited task is a different task (`EvalArm.key`).
    public var source: String
}

/// A suite: tasks read from a JSON Lines file (`tasks.jsonl` in the suite's directory), one task
/// object per line; blank lines and lines starting with `#` are skipped. Reading runs on the
/// caller's thread and throws `EvalError` naming the file, the line and the member.
public struct EvalSuite: Sendable {
    public var name: String
    /// The directory checks run in and workspace fixtures are copied from.
    public var directory: String
    public var tasks: [EvalTask]

    static let members: Set<String> = ["id", "goal", "inputs", "workspace", "check", "step_check", "timeout"]

    /// Reads `path`: a suite directory holding `tasks.jsonl`, or such a file itself.
    public static func load(_ path: String) throws(EvalError) -> EvalSuite {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw EvalError("suite \(path): no such file or directory")
        }
        let file = isDirectory.boolValue ? path + "/tasks.jsonl" : path
        let directory = (file as NSString).deletingLastPathComponent
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw EvalError("suite \(file): cannot be read as UTF-8 text (a suite is a directory with tasks.jsonl)")
        }
        let name =
            isDirectory.boolValue
            ? (path as NSString).lastPathComponent : ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        let tasks = try parse(text, file: file)
        for task in tasks {
            if let workspace = task.workspace {
                var dir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: directory + "/" + workspace, isDirectory: &dir), dir.boolValue else {
                    throw EvalError("suite \(file): task \(task.id): workspace '\(workspace)' is not a directory under \(directory)")
                }
            }
        }
        return EvalSuite(name: name, directory: directory, tasks: tasks)
    }

    /// The tasks of a suite's text. Throws naming `file`, the line and the member.
    public static func parse(_ text: String, file: String) throws(EvalError) -> [EvalTask] {
        var tasks: [EvalTask] = []
        var seen: Set<String> = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let at = "suite \(file) line \(index + 1)"
            let value: JSON
            do {
                value = try JSON.parse(line)
            } catch {
                throw EvalError("\(at): not JSON: \(error)")
            }
            guard case let .object(members) = value else { throw EvalError("\(at): a task must be a JSON object, got \(value.typeName)") }
            for (key, _) in members where !Self.members.contains(key) {
                throw EvalError("\(at): unknown member '\(key)' (allowed: \(Self.members.sorted().joined(separator: ", ")))")
            }
            guard let id = value["id"]?.stringValue, !id.isEmpty,
                id.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) && $0.isASCII || "._-".unicodeScalars.contains($0) })
            else {
                throw EvalError("\(at): 'id' must be a non-empty string of letters, digits, '.', '_' and '-'")
            }
            guard seen.insert(id).inserted else { throw EvalError("\(at): task id '\(id)' is used twice") }
            guard let goal = value["goal"]?.stringValue, !goal.isEmpty else {
                throw EvalError("\(at): task \(id): 'goal' must be a non-empty string")
            }
            let inputs = value["inputs"] ?? .object([])
            guard case .object = inputs else { throw EvalError("\(at): task \(id): 'inputs' must be an object") }
            var workspace: String?
            if let w = value["workspace"], !w.isNull {
                guard let s = w.stringValue, !s.isEmpty, !s.hasPrefix("/"), !s.split(separator: "/").contains("..") else {
                    throw EvalError("\(at): task \(id): 'workspace' must be a relative directory inside the suite")
                }
                workspace = s
            }
            let check = try argv(value["check"], "check", at: "\(at): task \(id)", required: true)!
            let stepCheck = try argv(value["step_check"], "step_check", at: "\(at): task \(id)", required: false)
            var timeout = 60.0
            if let t = value["timeout"], !t.isNull {
                guard let seconds = t.doubleValue, seconds > 0, seconds <= 3600 else {
                    throw EvalError("\(at): task \(id): 'timeout' must be a number of seconds in (0, 3600]")
                }
                timeout = seconds
            }
            tasks.append(
                EvalTask(
                    id: id, goal: goal, inputs: inputs, workspace: workspace, check: check, stepCheck: stepCheck, timeoutSeconds: timeout,
                    source: line))
        }
        guard !tasks.isEmpty else { throw EvalError("suite \(file): no tasks") }
        return tasks
    }

    private static func argv(_ value: JSON?, _ name: String, at: String, required: Bool) throws(EvalError) -> [String]? {
        guard let value, !value.isNull else {
            if required { throw EvalError("\(at): '\(name)' is required: an argv, a non-empty array of strings") }
            return nil
        }
        guard let items = value.arrayValue, !items.isEmpty, let strings = Optional(items.compactMap(\.stringValue)),
            strings.count == items.count, !strings[0].isEmpty
        else {
            throw EvalError("\(at): '\(name)' must be an argv, a non-empty array of strings whose first is not empty")
        }
        return strings
    }
}
