import Store

/// A critic that is a jury: several jurors judge each output, each on its own, and a rule turns
/// their votes into the one verdict the step acts on (`critic: {jury: [...], rule, on_error}`).
///
/// Every juror is asked (concurrently, in an order shuffled per judgement and recorded); each vote
/// is pass, fail or error. An error is a juror that gave no valid verdict: its call failed (a
/// command juror that timed out or was killed included), or every reply was invalid within
/// `policy.max_invalid_replies`. `onError` says how an error counts:
///
/// | rule | counted votes | passes when |
/// |---|---|---|
/// | `majority` | pass and fail votes | more passes than fails (a tie fails; no counted vote fails) |
/// | `unanimous` | pass and fail votes | at least one pass and no fail |
/// | `mean_score >= X` | the scores of pass and fail votes | their mean is at least X (no counted vote fails) |
///
/// Under `on_error: fail` (the default) an error counts as a fail vote with score 0, so it can only
/// keep an output from passing; under `on_error: abstain` it is left out of the count (a jury where
/// every juror errs still fails). Pure value; any thread.
public struct JurySpec: Sendable, Equatable {
    public var jurors: [Juror]
    public var rule: Rule
    public var onError: OnError

    public init(jurors: [Juror], rule: Rule, onError: OnError = .fail) {
        self.jurors = jurors
        self.rule = rule
        self.onError = onError
    }

    /// Jurors a jury may have; more is refused when the plan loads.
    public static let maxJurors = 32

    /// How the votes decide.
    public enum Rule: Sendable, Equatable {
        case majority
        case unanimous
        /// The mean score of the counted votes is at least this (0...1).
        case meanScore(atLeast: Double)

        /// The rule as written in a plan and recorded: `majority`, `unanimous`, `mean_score >= 0.7`.
        public var text: String {
            switch self {
            case .majority: return "majority"
            case .unanimous: return "unanimous"
            case let .meanScore(threshold): return "mean_score >= \(JSON.number(threshold).encoded)"
            }
        }

        /// The rule `text` names (spaces optional), or nil. The threshold is not range-checked here.
        public init?(text: String) {
            let compact = String(text.filter { $0 != " " })
            switch compact {
            case "majority": self = .majority
            case "unanimous": self = .unanimous
            default:
                let prefix = "mean_score>="
                guard compact.hasPrefix(prefix), let value = Double(compact.dropFirst(prefix.count)), value.isFinite else { return nil }
                self = .meanScore(atLeast: value)
            }
        }

        /// The rules' forms, for error messages.
        public static let known = "majority, unanimous, 'mean_score >= X' (X from 0 to 1)"
    }

    /// How a juror that gave no valid verdict counts.
    public enum OnError: String, Sendable, CaseIterable {
        /// As a fail vote scored 0.
        case fail
        /// Not at all: the rule counts the other votes.
        case abstain
    }
}

/// One juror: a name (unique in its jury; `juror1`…`jurorN` by default) and either a model role or
/// a command critic.
public struct Juror: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case model(RoleSpec)
        case command(CommandSpec)
    }

    public var name: String
    public var kind: Kind

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// The one name no juror may have: the ground-truth check's agent is `critic/JOB/check`.
    public static let reservedName = "check"

    /// Whether `name` may name a juror: 1 to 64 letters, digits, `_`, `-` or `.` (it becomes part of
    /// the juror's agent id, `critic/JOB/NAME`).
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.unicodeScalars.allSatisfy {
                $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0))
            }
    }
}
