import Store

/// A validated plan file: the job template a client submits with a goal and inputs.
///
/// A plan names its model endpoints, configures the four roles, optionally fixes the steps (otherwise
/// the planner makes them), and sets the policy that bounds reruns and re-plans. `PlanLoader` builds it
/// from YAML and reports errors with file, line and field; `Plan.json` / `Plan(json:)` give the
/// snapshot stored with each job, so a job never depends on the plan file still existing.
public struct Plan: Sendable, Equatable {
    public var name: String
    public var description: String?
    public var models: [String: ModelSpec]
    public var planner: RoleSpec?
    public var actor: RoleSpec
    public var critic: CriticSpec
    public var verifier: VerifierSpec
    /// Fixed steps; when nil the planner makes them.
    public var steps: [String]?
    /// Where the actor's tools work: a path with `{goal}` and `{input.NAME}` substituted, relative
    /// ones resolved against the job's `cwd`; nil means the job's `cwd`.
    public var workspace: String?
    /// Whether other jobs may work in the same workspace at the same time (`workspace_shared`): a job
    /// is refused at submission while another job holds its workspace, unless both plans say so.
    public var workspaceShared: Bool
    /// How the actor's `run_command` is confined.
    public var sandbox: Sandbox
    public var policy: Policy
    /// Which of the actor's tool calls are reviewed before they run; the first matching rule applies.
    public var gates: [GateRule]
    /// Fixed steps (by index) whose output the critic passed is accepted only after a person's
    /// review (`human`), or when the critic's pass was not confident (`critic_then_human`).
    public var stepReviews: [Int: GateRule.Review]
    /// The ground-truth check (`check`): a command run on every output the critic judged, recorded
    /// (`step.checked`) for `agentd stats`; never shown to an agent and never deciding anything.
    public var check: CommandSpec?

    public init(
        name: String, description: String? = nil, models: [String: ModelSpec], planner: RoleSpec?, actor: RoleSpec,
        critic: CriticSpec, verifier: VerifierSpec, steps: [String]?, workspace: String? = nil, workspaceShared: Bool = false,
        sandbox: Sandbox = Sandbox(), policy: Policy, gates: [GateRule] = [], stepReviews: [Int: GateRule.Review] = [:],
        check: CommandSpec? = nil
    ) {
        self.name = name
        self.description = description
        self.models = models
        self.planner = planner
        self.actor = actor
        self.critic = critic
        self.verifier = verifier
        self.steps = steps
        self.workspace = workspace
        self.workspaceShared = workspaceShared
        self.sandbox = sandbox
        self.policy = policy
        self.gates = gates
        self.stepReviews = stepReviews
        self.check = check
    }

    /// The role configuration for `role`, when the plan has one (the critic and the verifier have one
    /// only when they are models).
    public func roleSpec(_ role: Role) -> RoleSpec? {
        switch role {
        case .planner: return planner
        case .actor: return actor
        case .critic:
            if case let .model(spec) = critic { return spec }
            return nil
        case .verifier:
            if case let .model(spec) = verifier { return spec }
            return nil
        }
    }
}

/// One configured role: which model answers it, its system prompt and its tools (names of
/// `ToolName`; only the actor may have tools, and a model critic the read-only ones).
public struct RoleSpec: Sendable, Equatable {
    public var model: String
    public var prompt: String
    public var tools: [String]
    /// A model critic's own tool-turn budget (`max_tool_turns` on the critic): model turns per
    /// verdict, the first included; nil means `policy.max_tool_turns`.
    public var maxToolTurns: Int?
    /// Sampling temperature of the first attempt; reruns raise it (see `Policy.retryTemperatureStep`).
    public var temperature: Double

    public init(model: String, prompt: String, tools: [String] = [], temperature: Double = 0.2) {
        self.model = model
        self.prompt = prompt
        self.tools = tools
        self.temperature = temperature
    }
}

/// How the job's success is decided: a command whose exit status decides, or a model.
public enum VerifierSpec: Sendable, Equatable {
    case command(CommandSpec)
    case model(RoleSpec)
}

/// How each attempt's output is judged: a command whose exit status is the verdict and whose output
/// is the feedback, a model, or a jury of several of either whose votes a rule decides.
public enum CriticSpec: Sendable, Equatable {
    case command(CommandSpec)
    case model(RoleSpec)
    case jury(JurySpec)

    /// Every command the critic runs: its own, or its command jurors'.
    public var commands: [CommandSpec] {
        switch self {
        case let .command(spec): return [spec]
        case .model: return []
        case let .jury(jury):
            return jury.jurors.compactMap { if case let .command(spec) = $0.kind { spec } else { nil } }
        }
    }
}

/// A command run without a shell: argv, an optional working directory, a timeout.
public struct CommandSpec: Sendable, Equatable {
    /// Each entry may contain `{goal}` or `{input.NAME}`; each is substituted within its own argv
    /// entry, so inputs never become shell syntax.
    public var argv: [String]
    public var cwd: String?
    public var timeoutSeconds: Double
    /// Whether the command runs in the plan's sandbox (when the plan's sandbox is on). `sandbox:
    /// false` on the command runs it as the daemon's user, unconfined.
    public var sandboxed = true
    /// Variables of the daemon's environment the command gets, secrets included: a plan-authored
    /// command gets a secret only when it names it here.
    public var environment: [String] = []

    public init(argv: [String], cwd: String? = nil, timeoutSeconds: Double) {
        self.argv = argv
        self.cwd = cwd
        self.timeoutSeconds = timeoutSeconds
    }
}

/// A model endpoint a role can name.
public struct ModelSpec: Sendable, Equatable {
    public enum Backend: Sendable, Equatable {
        /// Deterministic replies from the plan (or a fixture file it names).
        case scripted(Script)
        /// One subprocess per call: the request as JSON on stdin, the reply as JSON on stdout.
        case command(CommandSpec)
        /// An OpenAI-compatible chat-completions endpoint over HTTP(S).
        case openai(OpenAISpec)
    }

    public var backend: Backend

    public init(backend: Backend) {
        self.backend = backend
    }

    public var backendName: String {
        switch backend {
        case .scripted: return "scripted"
        case .command: return "command"
        case .openai: return "openai"
        }
    }
}

/// An OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, llama.cpp's server, Ollama, LiteLLM).
///
/// The API key itself is never part of a plan: `apiKeyEnv` names the environment variable of the
/// daemon that holds it.
public struct OpenAISpec: Sendable, Equatable {
    /// How a structured reply (plan, verdict, verification) is requested.
    public enum StructuredOutput: String, Sendable, CaseIterable {
        /// `response_format: {type: json_schema, json_schema: {name, schema, strict}}` (OpenAI, vLLM).
        case jsonSchema = "json_schema"
        /// `response_format: {type: json_object, schema}` (llama.cpp's server).
        case jsonObject = "json_object"
        /// No `response_format`: the schema is only described in the prompt.
        case none
    }

    /// `…/v1`; nil means `$OPENAI_BASE_URL`, else `https://api.openai.com/v1`.
    public var baseURL: String?
    /// The model name sent in each request; nil means `$OPENAI_MODEL` of the daemon.
    public var model: String?
    /// The name of the environment variable holding the API key; no key is sent when it is unset.
    public var apiKeyEnv: String = "OPENAI_API_KEY"
    /// Extra request headers, sorted by name.
    public var headers: [String: String] = [:]
    /// A PEM file of CA certificates to trust for HTTPS instead of the system's (a private CA).
    public var caFile: String?
    public var structuredOutput: StructuredOutput = .jsonSchema
    public var maxTokens: Int?
    public var seed: Int?
    /// Per HTTP request, connecting included.
    public var timeoutSeconds: Double = 120
    public var connectTimeoutSeconds: Double = 10
    /// No byte received for this long fails the request.
    public var idleTimeoutSeconds: Double = 60
    /// Retries after a 429, a 5xx, a timeout or a connection error (exponential backoff with jitter,
    /// at least the server's `Retry-After`); other 4xx replies are not retried.
    public var retries: Int = 3
    /// First backoff delay; doubled on each retry.
    public var backoffSeconds: Double = 0.5
    /// Requests in flight to this endpoint at once, across all jobs; more wait their turn.
    public var maxConcurrent: Int = 16
    /// Replies larger than this fail the call.
    public var maxReplyBytes: Int = 8 << 20
    /// US dollars per million input and output tokens; with them each call records its cost.
    public var price: (input: Double, output: Double)?
    /// Requests this endpoint (base URL) may receive per `rateWindowSeconds`, across all jobs; more wait.
    public var requestsPerMinute: Int?
    /// Tokens (estimated before a request, corrected by its reported usage) per `rateWindowSeconds`.
    public var tokensPerMinute: Int?
    /// The window the two budgets count over: a minute unless a test shortens it.
    public var rateWindowSeconds: Double = 60

    public static func == (a: OpenAISpec, b: OpenAISpec) -> Bool {
        a.baseURL == b.baseURL && a.caFile == b.caFile && a.model == b.model && a.apiKeyEnv == b.apiKeyEnv && a.headers == b.headers
            && a.structuredOutput == b.structuredOutput && a.maxTokens == b.maxTokens && a.seed == b.seed
            && a.timeoutSeconds == b.timeoutSeconds && a.connectTimeoutSeconds == b.connectTimeoutSeconds
            && a.idleTimeoutSeconds == b.idleTimeoutSeconds && a.retries == b.retries && a.backoffSeconds == b.backoffSeconds
            && a.maxConcurrent == b.maxConcurrent && a.maxReplyBytes == b.maxReplyBytes
            && a.price?.input == b.price?.input && a.price?.output == b.price?.output
            && a.requestsPerMinute == b.requestsPerMinute && a.tokensPerMinute == b.tokensPerMinute
            && a.rateWindowSeconds == b.rateWindowSeconds
    }

    public init(model: String?) {
        self.model = model
    }
}

/// How the actor's `run_command` is confined: a bubblewrap sandbox, on unless the plan turns it off.
///
/// Inside, the workspace (and `writable`) is the only writable part of the filesystem, the rest is
/// read-only, `/tmp` and `/run` are empty, there is no network unless `network`, the command is in
/// its own PID namespace, and its CPU time, address space and processes are limited. Its environment
/// holds only what agentd sets and the variables `environment` names. The daemon carries it out
/// (`Bubblewrap` in Orchestrator); this is only the plan's configuration.
public struct Sandbox: Sendable, Equatable {
    /// False runs commands as the daemon's user, unconfined (`sandbox: false`).
    public var enabled = true
    /// Whether the command may use the network (the host's network namespace).
    public var network = false
    /// `RLIMIT_CPU` of each process, in seconds.
    public var cpuSeconds = 300
    /// `RLIMIT_AS` of each process (its address space), in MiB; also the size of the sandbox's `/tmp`.
    public var memoryMB = 4096
    /// `RLIMIT_NPROC`: processes (threads included) of the sandbox's user.
    public var processes = 1024
    /// Memory of all the job's sandboxed commands together, in MiB (a cgroup, where the machine has one).
    public var jobMemoryMB = 8192
    /// Processes and threads of all the job's sandboxed commands together (a cgroup, likewise).
    public var jobProcesses = 4096
    /// Absolute paths, besides the workspace, that commands may write.
    public var writable: [String] = []
    /// Names of the daemon's environment variables passed to commands (a secret never is: the plan's
    /// API keys are refused when it loads, the daemon's secrets when the job is submitted).
    public var environment: [String] = []

    public init() {}

    /// No sandbox: `sandbox: false`.
    public static var off: Sandbox {
        var sandbox = Sandbox()
        sandbox.enabled = false
        return sandbox
    }
}

/// Bounds on reruns, re-plans and time.
public struct Policy: Sendable, Equatable {
    /// Attempts per step, the first included.
    public var maxAttempts: Int = 3
    /// Re-plans per job after a step exhausts its attempts.
    public var maxReplans: Int = 1
    /// How often a call whose reply does not parse (a verdict, a plan) is asked again.
    public var maxInvalidReplies: Int = 2
    /// The least score a model critic's pass may have: a pass scored lower contradicts itself and is
    /// asked again (`ReplyRules.strict`).
    public var passScore: Double = 0.5
    /// A failing verdict whose `feasibility` is below this re-plans at once instead of spending the
    /// step's remaining attempts (when the plan has a planner and re-plans left); 0 never does.
    public var replanBelow: Double = 0
    /// How long a gate may wait for a person's decision; 0 means no limit.
    public var approvalTimeoutSeconds: Double = 0
    /// What a gate whose `approvalTimeoutSeconds` passed does.
    public var onApprovalTimeout: ApprovalTimeout = .fail
    /// Proposed tool calls a job's reviewers may reject or block before the job fails.
    public var maxRejections: Int = 10
    /// The same, per step: one more ends the step as failed (a re-plan, or the job fails).
    public var maxRejectionsPerStep: Int = 5
    /// What a step that used all its attempts does.
    public var onExhausted: Exhausted = .replan
    /// Candidates the actor is asked for per attempt, concurrently; the critic judges each and the
    /// best-scored passing one goes on (`JobRunner+Samples`). Candidate `k` (from 0) is asked at the
    /// attempt's temperature plus `k * samplesTemperatureStep`, capped at 2.
    public var samples: Int = 1
    /// The most `samples` a plan may ask for.
    public static let maxSamples = 16
    /// How far apart the temperatures of an attempt's candidates are: half of
    /// `retryTemperatureStep`, so an attempt's samples spread between it and the next rerun's.
    public var samplesTemperatureStep: Double { retryTemperatureStep / 2 }

    public enum Exhausted: String, Sendable, CaseIterable {
        /// Re-plan the remaining work when the plan has a planner and re-plans left; else fail.
        case replan
        /// Fail the job.
        case fail
        /// Go on with the best-scored output the critic judged in the step (marked so in the record).
        case best
    }

    public enum ApprovalTimeout: String, Sendable {
        /// The call is rejected: the actor is told so and may propose something else.
        case reject
        /// The job fails.
        case fail
    }
    /// Per agent call.
    public var callTimeoutSeconds: Double = 120
    /// Per step: all its attempts, their actor and critic calls and their tools, from when the step
    /// starts (again from its resumption after a restart); 0 means no limit. A step that runs out of
    /// time ends like one that runs out of attempts: a re-plan when the budget allows, else the job
    /// fails.
    public var stepTimeoutSeconds: Double = 0
    /// Per job, from when it starts running; 0 means no limit.
    public var jobTimeoutSeconds: Double = 0
    /// Added to a role's temperature on each rerun so a retry differs.
    public var retryTemperatureStep: Double = 0.2
    /// Tokens (input and output, all roles) a job may use; 0 means no limit.
    public var maxTokens: Int = 0
    /// Per tool run (`run_command`); the process group is killed when it passes.
    public var toolTimeoutSeconds: Double = 60
    /// Model turns per actor call when the actor has tools, the first included.
    public var maxToolTurns: Int = 8
    /// Bytes of output one tool result carries — stdout and stderr together, or the content of a
    /// file `read_file` reads — counted as they are encoded in JSON (a control byte counts six).
    public var toolOutputCap: Int = 64 << 10
    /// Tool calls the actor may make in one model turn; the calls beyond are answered with an error
    /// and not run.
    public var maxToolCallsPerTurn: Int = 16
    /// Bytes of tool output (counted as `toolOutputCap` counts them) the results of one model turn
    /// carry together; a call made when it is used up is answered with an error and not run.
    public var turnToolOutputCap: Int = Policy.defaultTurnToolOutputCap
    /// Bytes of tool output the whole job may receive; past it every tool call is answered with an
    /// error and not run.
    public var jobToolOutputCap: Int = Policy.defaultJobToolOutputCap

    /// The defaults of the two budgets when the plan names neither them nor a larger
    /// `tool_output_cap` (a larger one raises them to itself, see `PlanLoader`).
    public static let defaultTurnToolOutputCap = 1 << 20
    public static let defaultJobToolOutputCap = 16 << 20

    public init() {}
}
