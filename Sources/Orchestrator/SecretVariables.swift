import Agents

/// The daemon's environment as it was read at start, and which of its variables hold secrets: the
/// daemon's own (`OPENAI_API_KEY`, `AGENTD_SECRET_ENV`'s, `secret_env` / `--secret-env`) and, per
/// job, its plan's API keys (every `openai` model's `api_key_env`). Every secret is kept from
/// every command alike: a plan may not pass one in `sandbox.env` (refused at submission, with the
/// reason), a `sandbox: false` command, a `command` model and a command critic or verifier get the
/// environment without any of them.
///
/// Everything the daemon later takes from its environment (API keys, `PATH`, the sandbox's passed
/// variables, the OTLP settings) comes from `environment`, this copy. With `scrubsProcess` the
/// values of the secrets are then wiped from the process's own environment block
/// (`ProcessEnvironment.scrub`) — the daemon's own at once, a plan's API key when a job first names
/// it — so `/proc/PID/environ` no longer shows them to a process of the same user.
///
/// Loop thread only (owned by the engine), but for `init`.
final class SecretVariables: @unchecked Sendable {
    let environment: [String: String]
    /// The daemon's own secret variables (not the plans' API keys).
    private(set) var names: Set<String>
    private let scrubsProcess: Bool
    /// The variables already wiped from the process (each is wiped once).
    private var wiped: Set<String> = []

    init(environment: [String: String], names: some Sequence<String>, scrubsProcess: Bool) {
        self.environment = environment
        self.names = Set(names)
        self.scrubsProcess = scrubsProcess
        wipe(self.names)
    }

    /// More of the daemon's own secrets (`secret_env` grew on reload).
    func add(_ more: some Sequence<String>) {
        names.formUnion(more)
        wipe(names)
    }

    /// A job of `plan` starts: its API-key variables are wiped from the process too (their values
    /// are in `environment`).
    func jobStarts(_ plan: Plan) {
        wipe(ToolBox.secretVariables(of: plan))
    }

    private func wipe(_ secrets: Set<String>) {
        let new = secrets.subtracting(wiped)
        guard scrubsProcess, !new.isEmpty else { return }
        ProcessEnvironment.scrub(new)
        wiped.formUnion(new)
    }

    /// Every variable `plan`'s commands must not get.
    func hidden(for plan: Plan) -> Set<String> {
        names.union(ToolBox.secretVariables(of: plan))
    }

    /// The environment of `plan`'s commands that are not sandboxed: `environment` without a secret.
    func commandEnvironment(for plan: Plan) -> [String: String] {
        let hidden = hidden(for: plan)
        return environment.filter { !hidden.contains($0.key) }
    }

    /// Why `plan` cannot run here: its `sandbox.env` names a variable this daemon holds as a secret
    /// (the plan loader refuses the plan's own API keys; it cannot know the daemon's).
    func refusal(of plan: Plan) -> String? {
        guard let name = plan.sandbox.environment.first(where: names.contains) else { return nil }
        return
            "sandbox.env names '\(name)', which this daemon holds as a secret (OPENAI_API_KEY, AGENTD_SECRET_ENV, secret_env or --secret-env); commands never get a secret"
    }
}
