import Foundation
import Store

/// One arm of an eval: a plan file every task runs under. The eval submits the plan's text with the
/// task's check spliced in where the plan asks for it, so a command critic can run the suite's own
/// check:
///
/// - `"{eval.check}"` (quoted, as a whole value) becomes the task's per-attempt check as an argv
///   (its `step_check`, else its `check`): `critic: {command: "{eval.check}", cwd: "{eval.suite}"}`;
/// - `"{eval.check_quiet}"` the same check with its output thrown away, so a critic passes or fails
///   without feedback;
/// - `"{eval.suite}"` the suite's directory.
///
/// Pure value; any thread.
public struct EvalArm: Sendable, Equatable {
    /// The plan file's name without its extension.
    public var name: String
    public var path: String
    public var text: String

    /// Reads the plan file at `path` (absolute). Throws `EvalError` when it cannot be read.
    public static func load(_ path: String) throws(EvalError) -> EvalArm {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw EvalError("arm \(path): cannot be read (an arm is a plan file, see plans/README.md)")
        }
        let file = (path as NSString).lastPathComponent
        let name = (file as NSString).deletingPathExtension
        guard !name.isEmpty else { throw EvalError("arm \(path): the file name gives no arm name") }
        return EvalArm(name: name, path: path, text: text)
    }

    /// The plan text for one task of `suite`.
    public func planText(for task: EvalTask, suite: EvalSuite) -> String {
        let check = task.stepCheck ?? task.check
        let quiet = ["sh", "-c", "\"$@\" >/dev/null 2>&1", "sh"] + check
        func encode(_ argv: [String]) -> String { JSON.array(argv.map(JSON.string)).encoded }
        return
            text
            .replacingOccurrences(of: "\"{eval.check_quiet}\"", with: encode(quiet))
            .replacingOccurrences(of: "\"{eval.check}\"", with: encode(check))
            .replacingOccurrences(of: "\"{eval.suite}\"", with: JSON.string(suite.directory).encoded)
    }

    /// The idempotency key of one run of `task` under this arm: the same for the same run name, suite,
    /// plan text, task line and repetition, so an interrupted eval finds the jobs it already submitted;
    /// an edited plan or task makes new ones.
    public func key(run: String, suite: EvalSuite, task: EvalTask, rep: Int) -> String {
        "eval/\(run)/\(suite.name)/\(name)@\(Self.digest(text))/\(task.id)@\(Self.digest(task.source))/\(rep)"
    }

    /// FNV-1a, 64 bits, in hex: a short name for a text, not a security measure.
    static func digest(_ text: String) -> String {
        let hash = text.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
