import ArgumentParser
import Foundation
import Orchestrator
import Store

/// The gates waiting for a person, read over the protocol.
private func waitingGates(_ client: RPCClient) throws -> [WaitingGateInfo] {
    let result = try failing { try client.call(.gates) }
    guard case let .array(items)? = result["gates"] else { throw CLIFailure("gate.list: the reply has no 'gates' list") }
    return try items.map { item in try failing { () throws -> WaitingGateInfo in try WaitingGateInfo(json: item) } }
}

/// The one waiting gate of `job` (`gate` when given): what `approve` and `reject` decide.
private func gateToDecide(_ client: RPCClient, job: String, gate: String?) throws -> WaitingGateInfo {
    let ofJob = try waitingGates(client).filter { $0.job == job }
    if let gate {
        guard let found = ofJob.first(where: { $0.gate == gate }) else {
            throw CLIFailure("job \(job) has no gate \(gate) waiting for a decision (see agentd pending)")
        }
        return found
    }
    guard let only = ofJob.first else { throw CLIFailure("job \(job) has no gate waiting for a decision (see agentd pending)") }
    guard ofJob.count == 1 else {
        throw CLIFailure("job \(job) has \(ofJob.count) gates waiting (\(ofJob.map(\.gate).joined(separator: ", "))): name one")
    }
    return only
}

/// Decides the job's waiting gate (`gate`, or its only one), naming the request it holds, and says so.
private func decide(socket: SocketOption, job: String, gate: String?, approve: Bool, note: String?, arguments: String?) throws {
    let client = try socket.connect()
    let waiting = try gateToDecide(client, job: job, gate: gate)
    let params = GateDecideParams(
        job: job, gate: waiting.gate, requestSHA256: waiting.requestSHA256, approve: approve, note: note, arguments: arguments)
    _ = try failing { try client.call(.decide(params)) }
    let call = describeCall(tool: waiting.tool, arguments: arguments ?? waiting.arguments)
    emit("\(approve ? "approved" : "rejected") \(job) \(waiting.gate): \(call)")
}

/// `tool args`, readably: a command's argv joined, else the arguments as sent.
func describeCall(tool: String, arguments: String) -> String {
    guard let parsed = try? JSON.parse(arguments) else { return "\(tool) \(arguments)" }
    if tool == "step_output", let step = parsed["step"]?.stringValue, let output = parsed["output"]?.stringValue {
        return "the output of the step \"\(step)\" for review:\n    " + output.replacingOccurrences(of: "\n", with: "\n    ")
    }
    if tool == "run_command", let argv = parsed["argv"]?.arrayValue?.compactMap(\.stringValue) {
        return "run_command: " + argv.map { $0.contains(" ") || $0.isEmpty ? JSON.string($0).encoded : $0 }.joined(separator: " ")
    }
    if let path = parsed["path"]?.stringValue {
        let bytes = parsed["content"]?.stringValue.map { " (\($0.utf8.count) bytes)" } ?? ""
        return "\(tool): \(path)\(bytes)"
    }
    return "\(tool) \(arguments)"
}

struct Pending: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the tool calls waiting for a person's decision, across jobs (approve or reject each).")

    @Flag(help: "Print JSON: {\"gates\": [...]} as gate.list answers.")
    var json = false

    @OptionGroup var socket: SocketOption

    mutating func run() throws {
        let client = try socket.connect()
        let gates = try waitingGates(client)
        if json {
            emit(JSON.object([("gates", .array(gates.map(\.json)))]).encoded)
            return
        }
        guard !gates.isEmpty else {
            emit("no gate is waiting for a decision")
            return
        }
        let now = Date().timeIntervalSince1970 * 1000
        for g in gates {
            let waited = Int(max(0, now - Double(g.requestedAt)) / 1000)
            let step = g.step.map { "step \($0 + 1)" } ?? "no step"
            emit("\(g.job) \(g.gate)  \(step), waiting \(waited)s  plan \(g.plan): \(g.goal)")
            emit("  \(describeCall(tool: g.tool, arguments: g.arguments))")
            emit("  agentd approve \(g.job) \(g.gate)   |   agentd reject \(g.job) \(g.gate) --reason TEXT")
        }
    }
}

struct Approve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Let a gated tool call run (the job's only waiting gate, or GATE), optionally with edited arguments.")

    @Argument(help: "The job id.")
    var job: String

    @Argument(help: "The gate (e.g. c3.0), when the job has more than one waiting.")
    var gate: String?

    @Option(help: "A note recorded with the approval.")
    var note: String?

    @Option(help: "The arguments to run instead, a JSON object (e.g. '{\"argv\": [\"ls\"]}'); recorded as yours.")
    var editArgs: String?

    @OptionGroup var socket: SocketOption

    mutating func run() throws {
        try decide(socket: socket, job: job, gate: gate, approve: true, note: note, arguments: editArgs)
    }
}

struct Reject: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Refuse a gated tool call (the job's only waiting gate, or GATE); the actor is told the reason.")

    @Argument(help: "The job id.")
    var job: String

    @Argument(help: "The gate (e.g. c3.0), when the job has more than one waiting.")
    var gate: String?

    @Option(help: "Why: the actor reads it as the call's result.")
    var reason: String

    @OptionGroup var socket: SocketOption

    mutating func run() throws {
        try decide(socket: socket, job: job, gate: gate, approve: false, note: reason, arguments: nil)
    }
}
