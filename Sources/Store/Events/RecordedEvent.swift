/// A typed event payload: one Swift value per `EventKind`, with the one JSON form it is stored in.
///
/// Writers build the value and store `json`; readers decode a record with `EventRecord.decode(_:)`,
/// which throws `EventPayloadError` naming the member of the wrong shape. Decoding accepts every
/// payload any agentd release wrote for the kind (members added later are optional). A new member is
/// one change here that the compiler then follows to every writer and reader.
public protocol RecordedEvent: Sendable, Equatable {
    static var kind: EventKind { get }
    init(payload: JSON) throws(EventPayloadError)
    /// The payload as it is stored (members in one fixed order: the chain covers the bytes).
    var json: JSON { get }
}

extension EventRecord {
    /// The record's payload as `E`. Throws when the record is of another kind or has the wrong shape.
    public func decode<E: RecordedEvent>(_: E.Type) throws(EventPayloadError) -> E {
        guard kind == E.kind.rawValue else { throw .wrongKind(E.kind, found: kind) }
        return try E(payload: payload)
    }

    /// The record's payload as `E` when it is of `E`'s kind and decodes; nil otherwise.
    public func payload<E: RecordedEvent>(as _: E.Type) -> E? {
        try? decode(E.self)
    }
}

extension EventKind {
    /// The typed value of this kind's payload. The switch is exhaustive: a new kind does not build
    /// until it has one.
    public var recordedType: any RecordedEvent.Type {
        switch self {
        case .jobSubmitted: return JobSubmitted.self
        case .jobState: return JobState.self
        case .jobReplanned: return JobReplanned.self
        case .jobResumed: return JobResumed.self
        case .callStarted: return CallStarted.self
        case .callCompleted: return CallCompleted.self
        case .callFailed: return CallFailed.self
        case .callRestarted: return CallRestarted.self
        case .stepExhausted: return StepExhausted.self
        case .stepTimedOut: return StepTimedOut.self
        case .stepInfeasible: return StepInfeasible.self
        case .gateRequested: return GateRequested.self
        case .gateDecided: return GateDecided.self
        case .gateRefused: return GateRefused.self
        case .attemptDuplicate: return AttemptDuplicate.self
        case .candidateStarted: return CandidateStarted.self
        case .candidateJudged: return CandidateJudged.self
        case .candidateChosen: return CandidateChosen.self
        case .toolStarted: return ToolStarted.self
        case .toolCompleted: return ToolCompleted.self
        case .toolRestarted: return ToolRestarted.self
        case .jobRetried: return JobRetried.self
        case .stepChecked: return StepChecked.self
        case .juryConvened: return JuryConvened.self
        case .juryVoted: return JuryVoted.self
        case .juryDecided: return JuryDecided.self
        }
    }

    /// Checks that `payload` has this kind's shape. Throws `EventPayloadError` naming the member
    /// that does not.
    public func check(_ payload: JSON) throws(EventPayloadError) {
        _ = try recordedType.init(payload: payload)
    }
}
