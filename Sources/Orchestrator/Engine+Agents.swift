import Agents
import Store

/// The agents of a starting job: one per role, each on the backend its plan names, and one per juror
/// of a jury critic (in replay, backends that only ever answer from the record). Loop thread only, like the engine.
extension Engine {
    func makeAgents(for entry: ActiveJob, launcher: CommandLauncher) -> [Agent] {
        if configuration.replay {
            let executor = loop.asUnownedSerialExecutor()
            let ids =
                Role.allCases.map { AgentID(role: $0, key: entry.record.id) } + Self.jurorIDs(entry)
                + (entry.plan.check != nil ? [Self.checkAgent(entry.record.id)] : [])
            return ids.map { Agent(id: $0, backend: RecordingEnds(), executor: executor) }
        }
        secrets.jobStarts(entry.plan)
        var backends: [String: any ModelBackend] = [:]
        for (name, model) in entry.plan.models {
            switch model.backend {
            case let .scripted(script): backends[name] = ScriptedBackend(script: script)
            case let .command(command):
                // `policy.call_timeout` bounds every model call; a model's own `timeout` may be shorter.
                var spec = VerifierCommand.substitute(command, for: entry.record)
                spec.timeoutSeconds = min(spec.timeoutSeconds, entry.plan.policy.callTimeoutSeconds)
                backends[name] = CommandBackend(loop: loop, spec: spec, baseDirectory: entry.record.cwd, launcher: launcher)
            case .openai(let spec):
                writer.redactor.add(variable: spec.apiKeyEnv)
                backends[name] = OpenAIBackend(
                    spec: spec, endpoints: endpoints, environment: secrets.environment,
                    callTimeoutSeconds: entry.plan.policy.callTimeoutSeconds)
            }
        }
        let executor = loop.asUnownedSerialExecutor()
        var agents: [Agent] = []
        for role in Role.allCases {
            let id = AgentID(role: role, key: entry.record.id)
            if role == .verifier, case let .command(verifier) = entry.plan.verifier {
                let command = VerifierCommand.substitute(verifier, for: entry.record)
                let cwd = Self.resolve(command.cwd, against: entry.record.cwd)
                agents.append(
                    Agent(id: id, backend: VerifierCommand(loop: loop, spec: command, cwd: cwd, launcher: launcher), executor: executor))
            } else if role == .critic, case let .command(command) = entry.plan.critic {
                agents.append(Agent(id: id, backend: commandCritic(command, for: entry, launcher: launcher), executor: executor))
            } else if let spec = entry.plan.roleSpec(role), let backend = backends[spec.model] {
                agents.append(Agent(id: id, backend: backend, executor: executor))
            }
        }
        if let check = entry.plan.check {
            agents.append(
                Agent(
                    id: Self.checkAgent(entry.record.id), backend: commandCritic(check, for: entry, launcher: launcher), executor: executor)
            )
        }
        if case let .jury(jury) = entry.plan.critic {
            for (juror, id) in zip(jury.jurors, Self.jurorIDs(entry)) {
                switch juror.kind {
                case let .model(spec):
                    if let backend = backends[spec.model] { agents.append(Agent(id: id, backend: backend, executor: executor)) }
                case let .command(command):
                    let backend = commandCritic(command, for: entry, launcher: launcher, juror: true)
                    agents.append(Agent(id: id, backend: backend, executor: executor))
                }
            }
        }
        return agents
    }

    /// The agent that runs a job's ground-truth check (`JobRunner+Check`): a critic-role agent of
    /// its own, so its calls are recorded apart from the critic's.
    static func checkAgent(_ jobID: String) -> AgentID { AgentID(role: .critic, key: "\(jobID)/check") }

    /// The agents of a jury critic's jurors, in plan order: `critic/JOB/NAME` (none without a jury).
    static func jurorIDs(_ entry: ActiveJob) -> [AgentID] {
        guard case let .jury(jury) = entry.plan.critic else { return [] }
        return jury.jurors.map { AgentID.juror(job: entry.record.id, name: $0.name) }
    }

    /// A plan command that judges outputs (the critic, the ground-truth check, a juror), its argv
    /// substituted for the job and its `cwd` resolved against the job's.
    private func commandCritic(_ command: CommandSpec, for entry: ActiveJob, launcher: CommandLauncher, juror: Bool = false)
        -> CriticCommand
    {
        let command = VerifierCommand.substitute(command, for: entry.record)
        return CriticCommand(
            loop: loop, spec: command, cwd: Self.resolve(command.cwd, against: entry.record.cwd), launcher: launcher, juror: juror)
    }

    static func resolve(_ path: String?, against base: String?) -> String? {
        guard let path else { return base }
        if path.hasPrefix("/") || base == nil { return path }
        return base! + "/" + path
    }
}
