import Store

/// What an agent made of its model's reply.
public enum Interpretation: Sendable, Equatable {
    case plan([String])
    case output(String)
    case verdict(Verdict)
    case verification(verified: Bool, reason: String?)
    /// The reply did not have the shape the role requires.
    case invalid(ReplyError)
    /// The reply called tools that were offered: the runner runs them and asks the model again.
    case toolCalls
}

/// An agent's answer to one call: the model's reply (or why the call failed) and its interpretation.
public struct AgentReply: Sendable, Equatable {
    public var reply: Result<ModelReply, ModelCallError>
    public var interpretation: Interpretation?
    public var durationNanos: UInt64

    public init(reply: Result<ModelReply, ModelCallError>, interpretation: Interpretation?, durationNanos: UInt64) {
        self.reply = reply
        self.interpretation = interpretation
        self.durationNanos = durationNanos
    }
}

/// One agent (planner, actor, critic or verifier) serving one job, as an actor on the bus.
///
/// It receives a full model request, asks its model, and interprets the reply for its role. It runs on
/// the executor it is given (the daemon's event loop), so it must never block; its backend does its
/// I/O on the same loop.
public actor Agent {
    public nonisolated let id: AgentID
    private let backend: any ModelBackend
    private nonisolated let executor: UnownedSerialExecutor

    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor }

    public init(id: AgentID, backend: any ModelBackend, executor: UnownedSerialExecutor) {
        self.id = id
        self.backend = backend
        self.executor = executor
    }

    /// Asks the model and reads its reply under `rules` (the job's, see `ReplyRules`).
    public func handle(_ request: ModelRequest, rules: ReplyRules) async -> AgentReply {
        let start = monotonicNanos()
        let reply: Result<ModelReply, ModelCallError>
        do {
            reply = .success(try await backend.complete(request))
        } catch {
            reply = .failure(error)
        }
        let interpretation = (try? reply.get()).map { Self.interpret($0, to: request, role: id.role, rules: rules) }
        return AgentReply(reply: reply, interpretation: interpretation, durationNanos: monotonicNanos() - start)
    }

    /// Reads a reply to `request` as the role requires: tools count as offered when the request
    /// offered them, and a critic's `evidence` may cite the tool calls of the request's conversation.
    /// Pure: recovery recomputes it from the recorded request.
    public static func interpret(_ reply: ModelReply, to request: ModelRequest, role: Role, rules: ReplyRules) -> Interpretation {
        let offered = !request.tools.isEmpty
        return interpret(
            reply, role: role, toolsOffered: offered, rules: rules,
            toolCalls: offered ? request.messages.flatMap { $0.toolCalls ?? [] }.map(\.id) : nil)
    }

    /// Reads a reply as the role requires, tool calls included; never throws. Tool calls are a tool
    /// turn only when the request offered tools; otherwise the text must do, and a reply that only
    /// called tools is `.invalid`. `toolCalls`: see `Verdict.parse`. Pure, like
    /// `interpret(_:role:)`: recovery recomputes it.
    public static func interpret(
        _ reply: ModelReply, role: Role, toolsOffered: Bool, rules: ReplyRules, toolCalls: [String]? = nil
    ) -> Interpretation {
        if !reply.toolCalls.isEmpty {
            if toolsOffered { return .toolCalls }
            if reply.content.isEmpty {
                let names = reply.toolCalls.map(\.name).joined(separator: ", ")
                return .invalid(ReplyError("the reply called tools (\(names)) but the \(role.rawValue) has none; answer with text"))
            }
        }
        return interpret(reply.content, role: role, rules: rules, toolCalls: toolCalls)
    }

    /// Reads a reply's text as the role requires under `rules`; never throws: a bad reply is `.invalid`.
    public static func interpret(_ text: String, role: Role, rules: ReplyRules, toolCalls: [String]? = nil) -> Interpretation {
        do throws(ReplyError) {
            switch role {
            case .planner: return .plan(try PlanReply.parse(text, rules: rules))
            case .actor: return .output(try ActorReply.parse(text))
            case .critic: return .verdict(try Verdict.parse(text, rules: rules, toolCalls: toolCalls))
            case .verifier:
                let r = try VerifierReply.parse(text, rules: rules)
                return .verification(verified: r.verified, reason: r.reason)
            }
        } catch {
            return .invalid(error)
        }
    }
}
