extension RPCError {
    /// The protocol error for an engine error: the one place engine errors become codes, messages
    /// and data (docs/protocol.md, Errors). Pure; any thread.
    public init(_ error: EngineError) {
        switch error.reason {
        case .invalidInput(let message): self = .invalidParams(message)
        case .invalidPlan(let message): self = .invalidPlan(message)
        case .permissionDenied(let message): self = .permissionDenied(message)
        case .shuttingDown: self = .shuttingDown
        case .storage(let message): self = .storage(message)
        case .storageUnavailable(let fault, let what): self = .storageUnavailable(fault, refusing: what)
        case .jobNotFound(let id): self = .jobNotFound(id)
        case .workspaceInUse(let directory, let job, let status): self = .workspaceInUse(directory, job: job, status: status)
        case .workspaceRefused(let message): self = .workspaceRefused(message)
        case .gateNotWaiting(let message): self = .gateNotWaiting(message)
        case .tooManyQueued(let limit, let max, let queued, let client):
            self = .tooManyQueued(limit: limit, max: max, queued: queued, client: client)
        }
    }
}
