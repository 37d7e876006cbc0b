"""The daemon's results as typed values.

Each type reads the members docs/protocol.md documents and keeps the whole decoded object in `raw`, so
a member a newer daemon adds is never lost. Members documented as optional are `None` when absent.
Steps and attempts are zero-based, as on the wire.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, List, Optional

from .errors import ProtocolViolation

JSONObject = Dict[str, Any]


class JobStatus:
    """The job states (docs/protocol.md, "Job states"), as the strings the daemon sends."""

    QUEUED = "queued"
    RUNNING = "running"
    #: A plan's gate holds a tool call until a person decides (`approve` / `reject`).
    AWAITING_APPROVAL = "awaiting_approval"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    ALL: FrozenSet[str] = frozenset({QUEUED, RUNNING, AWAITING_APPROVAL, SUCCEEDED, FAILED, CANCELLED})
    TERMINAL: FrozenSet[str] = frozenset({SUCCEEDED, FAILED, CANCELLED})


def _object(value: Any, what: str) -> JSONObject:
    if not isinstance(value, dict):
        raise ProtocolViolation(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def _member(obj: JSONObject, name: str, kind: type, what: str, optional: bool = False) -> Any:
    value = obj.get(name)
    if value is None and optional:
        return None
    # bool is an int in Python; a member documented as a number must not be a boolean.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolViolation(f"{what}: member '{name}' should be {kind.__name__}, got {value!r}")
    return value


@dataclass(frozen=True)
class Job:
    """The job object. `created` is set by `submit`; `completed_calls` and `usage` by `get`."""

    id: str
    plan: str
    goal: str
    status: str
    reason: Optional[str]
    inputs: JSONObject
    idempotency_key: Optional[str]
    created_at: int
    started_at: Optional[int]
    finished_at: Optional[int]
    created: Optional[bool] = None
    completed_calls: Optional[Dict[str, int]] = None
    usage: Optional[JSONObject] = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_terminal(self) -> bool:
        """Whether the job has finished (succeeded, failed or cancelled): it never changes again."""
        return self.status in JobStatus.TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == JobStatus.SUCCEEDED

    @classmethod
    def from_json(cls, value: Any) -> "Job":
        obj = _object(value, "job")
        what = "job"
        return cls(
            id=_member(obj, "id", str, what),
            plan=_member(obj, "plan", str, what),
            goal=_member(obj, "goal", str, what),
            status=_member(obj, "status", str, what),
            reason=_member(obj, "reason", str, what, optional=True),
            inputs=_member(obj, "inputs", dict, what, optional=True) or {},
            idempotency_key=_member(obj, "idempotency_key", str, what, optional=True),
            created_at=_member(obj, "created_at", int, what),
            started_at=_member(obj, "started_at", int, what, optional=True),
            finished_at=_member(obj, "finished_at", int, what, optional=True),
            created=_member(obj, "created", bool, what, optional=True),
            completed_calls=_member(obj, "completed_calls", dict, what, optional=True),
            usage=_member(obj, "usage", dict, what, optional=True),
            raw=obj,
        )


@dataclass(frozen=True)
class Event:
    """One recorded event of a job's log (docs/protocol.md, "Events"). `call` is set on `call.*` and
    `tool.*` events only; `step` and `attempt` are zero-based."""

    job: str
    seq: int
    at: int
    kind: str
    role: Optional[str]
    step: Optional[int]
    attempt: Optional[int]
    payload: JSONObject
    call: Optional[str] = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_terminal_state(self) -> bool:
        """Whether this is the `job.state` event that ended the job."""
        return self.kind == "job.state" and self.payload.get("to") in JobStatus.TERMINAL

    @classmethod
    def from_json(cls, value: Any) -> "Event":
        obj = _object(value, "event")
        what = "event"
        return cls(
            job=_member(obj, "job", str, what),
            seq=_member(obj, "seq", int, what),
            at=_member(obj, "at", int, what),
            kind=_member(obj, "kind", str, what),
            role=_member(obj, "role", str, what, optional=True),
            step=_member(obj, "step", int, what, optional=True),
            attempt=_member(obj, "attempt", int, what, optional=True),
            payload=_member(obj, "payload", dict, what, optional=True) or {},
            call=_member(obj, "call", str, what, optional=True),
            raw=obj,
        )


@dataclass(frozen=True)
class TranscriptPage:
    """One page of `job.transcript`: the job, its events after `after_seq`, and `next_after_seq` when
    the page was full (pass it as `after_seq` for the next page)."""

    job: Job
    events: List[Event]
    next_after_seq: Optional[int]
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> "TranscriptPage":
        obj = _object(value, "transcript page")
        events = _member(obj, "events", list, "transcript page")
        return cls(
            job=Job.from_json(obj.get("job")),
            events=[Event.from_json(e) for e in events],
            next_after_seq=_member(obj, "next_after_seq", int, "transcript page", optional=True),
            raw=obj,
        )


@dataclass(frozen=True)
class PruneResult:
    """What `job.prune` removed (or would remove, in a dry run); `prune` is the id of its record."""

    dry_run: bool
    before: int
    statuses: List[str]
    jobs: int
    events: int
    prune: Optional[int]
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> "PruneResult":
        obj = _object(value, "prune result")
        what = "prune result"
        return cls(
            dry_run=_member(obj, "dry_run", bool, what),
            before=_member(obj, "before", int, what),
            statuses=_member(obj, "statuses", list, what),
            jobs=_member(obj, "jobs", int, what),
            events=_member(obj, "events", int, what),
            prune=_member(obj, "prune", int, what, optional=True),
            raw=obj,
        )


@dataclass(frozen=True)
class DaemonStatus:
    """`daemon.status`: whether the daemon takes jobs, its figures, its storage and its configuration."""

    accepting: bool
    version: str
    protocol_version: int
    pid: int
    socket: str
    running: int
    queued: int
    watchers: int
    jobs: Dict[str, int]
    storage: JSONObject
    config: JSONObject
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def storage_ok(self) -> bool:
        return self.storage.get("state") == "ok"

    @classmethod
    def from_json(cls, value: Any) -> "DaemonStatus":
        obj = _object(value, "daemon status")
        what = "daemon status"
        return cls(
            accepting=_member(obj, "accepting", bool, what),
            version=_member(obj, "version", str, what),
            protocol_version=_member(obj, "protocol_version", int, what),
            pid=_member(obj, "pid", int, what),
            socket=_member(obj, "socket", str, what),
            running=_member(obj, "running", int, what),
            queued=_member(obj, "queued", int, what),
            watchers=_member(obj, "watchers", int, what),
            jobs=_member(obj, "jobs", dict, what),
            storage=_member(obj, "storage", dict, what, optional=True) or {},
            config=_member(obj, "config", dict, what, optional=True) or {},
            raw=obj,
        )


@dataclass(frozen=True)
class ChainReport:
    """One job's hash chain as `audit.verify` recomputed it. For a broken chain, `seq`, `kind`,
    `problem` (`edited`, `missing`, `out_of_order`, `no_hash`, `head` or `job`) and `message` say where
    and why."""

    job: str
    ok: bool
    events: int
    head: Optional[str]
    seq: Optional[int] = None
    kind: Optional[str] = None
    problem: Optional[str] = None
    message: Optional[str] = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> "ChainReport":
        obj = _object(value, "chain report")
        what = "chain report"
        return cls(
            job=_member(obj, "job", str, what),
            ok=_member(obj, "ok", bool, what),
            events=_member(obj, "events", int, what),
            head=_member(obj, "head", str, what, optional=True),
            seq=_member(obj, "seq", int, what, optional=True),
            kind=_member(obj, "kind", str, what, optional=True),
            problem=_member(obj, "problem", str, what, optional=True),
            message=_member(obj, "message", str, what, optional=True),
            raw=obj,
        )


@dataclass(frozen=True)
class VerifyResult:
    """`audit.verify`: `ok` when every chain verified; one report per job, oldest first. `pruned_job`
    is set when the job asked for was removed by a prune (it then has no report)."""

    ok: bool
    jobs: int
    events: int
    reports: List[ChainReport]
    pruned_jobs: int
    prunes: int
    last_prune_at: Optional[int]
    pruned_job: Optional[JSONObject] = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> "VerifyResult":
        obj = _object(value, "verify result")
        what = "verify result"
        return cls(
            ok=_member(obj, "ok", bool, what),
            jobs=_member(obj, "jobs", int, what),
            events=_member(obj, "events", int, what),
            reports=[ChainReport.from_json(r) for r in _member(obj, "reports", list, what)],
            pruned_jobs=_member(obj, "pruned_jobs", int, what, optional=True) or 0,
            prunes=_member(obj, "prunes", int, what, optional=True) or 0,
            last_prune_at=_member(obj, "last_prune_at", int, what, optional=True),
            pruned_job=_member(obj, "pruned_job", dict, what, optional=True),
            raw=obj,
        )


@dataclass(frozen=True)
class SearchHit:
    """One event `audit.search` found: where it is, and `snippet`, its matching text with the matches
    between `**`. `rank` is FTS5's bm25 (lower is better); `step` and `attempt` are zero-based."""

    job: str
    seq: int
    at: int
    kind: str
    role: Optional[str]
    step: Optional[int]
    attempt: Optional[int]
    snippet: str
    call: Optional[str] = None
    rank: Optional[float] = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> "SearchHit":
        obj = _object(value, "search hit")
        what = "search hit"
        rank = obj.get("rank")
        return cls(
            job=_member(obj, "job", str, what),
            seq=_member(obj, "seq", int, what),
            at=_member(obj, "at", int, what),
            kind=_member(obj, "kind", str, what),
            role=_member(obj, "role", str, what, optional=True),
            step=_member(obj, "step", int, what, optional=True),
            attempt=_member(obj, "attempt", int, what, optional=True),
            snippet=_member(obj, "snippet", str, what),
            call=_member(obj, "call", str, what, optional=True),
            rank=float(rank) if isinstance(rank, (int, float)) and not isinstance(rank, bool) else None,
            raw=obj,
        )


@dataclass(frozen=True)
class BackupResult:
    """`daemon.backup`: the database copied, where the checked copy is, the jobs it holds and its size."""

    database: str
    path: str
    jobs: int
    bytes: int
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> "BackupResult":
        obj = _object(value, "backup result")
        what = "backup result"
        return cls(
            database=_member(obj, "database", str, what),
            path=_member(obj, "path", str, what),
            jobs=_member(obj, "jobs", int, what),
            bytes=_member(obj, "bytes", int, what),
            raw=obj,
        )


@dataclass(frozen=True)
class Gate:
    """A tool call a plan's gate holds until a person decides (`gate.list`): the job, the gate's id
    (the proposed call's id), the call as the model proposed it (`arguments` is its JSON text) and
    `request_sha256`, which a decision must name. `step` and `attempt` are zero-based."""

    job: str
    gate: str
    tool: str
    arguments: str
    request_sha256: str
    plan: Optional[str] = None
    goal: Optional[str] = None
    step: Optional[int] = None
    attempt: Optional[int] = None
    requested_at: Optional[int] = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> "Gate":
        obj = _object(value, "gate")
        what = "gate"
        return cls(
            job=_member(obj, "job", str, what),
            gate=_member(obj, "gate", str, what),
            tool=_member(obj, "tool", str, what),
            arguments=_member(obj, "arguments", str, what),
            request_sha256=_member(obj, "request_sha256", str, what),
            plan=_member(obj, "plan", str, what, optional=True),
            goal=_member(obj, "goal", str, what, optional=True),
            step=_member(obj, "step", int, what, optional=True),
            attempt=_member(obj, "attempt", int, what, optional=True),
            requested_at=_member(obj, "requested_at", int, what, optional=True),
            raw=obj,
        )


@dataclass(frozen=True)
class GateDecision:
    """`gate.decide`: the decision is recorded as the job's event `seq` (`gate.decided`)."""

    job: str
    gate: str
    seq: int
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, value: Any) -> "GateDecision":
        obj = _object(value, "gate decision")
        what = "gate decision"
        return cls(
            job=_member(obj, "job", str, what),
            gate=_member(obj, "gate", str, what),
            seq=_member(obj, "seq", int, what),
            raw=obj,
        )
