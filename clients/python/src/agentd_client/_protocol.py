"""What the sync and the asyncio client share: the socket path, request framing, each method's params,
and the routing of `job.event` notifications to the watch they belong to. No I/O here."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

from .errors import ProtocolViolation, RPCError, Unsupported

PathLike = Union[str, "os.PathLike[str]"]

#: The protocol version this client was written against (`daemon.status` → `protocol_version`).
PROTOCOL_VERSION = 1


def default_socket_path() -> str:
    """The socket the CLI would use: `$AGENTD_SOCKET`, else `$XDG_RUNTIME_DIR/agentd/agentd.sock`, else
    `/tmp/agentd-$UID/agentd.sock` (empty variables count as unset)."""
    explicit = os.environ.get("AGENTD_SOCKET")
    if explicit:
        return explicit
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "agentd", "agentd.sock")
    return f"/tmp/agentd-{os.getuid()}/agentd.sock"


def encode_request(request_id: int, method: str, params: Optional[Dict[str, Any]]) -> bytes:
    """One request line. `ensure_ascii` keeps the line ASCII, so no byte of it can be a stray newline."""
    message: Dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def decode_line(line: bytes) -> Dict[str, Any]:
    try:
        message = json.loads(line)
    except ValueError as error:
        raise ProtocolViolation(f"the daemon sent a line that is not JSON ({error}): {line[:200]!r}") from None
    if not isinstance(message, dict):
        raise ProtocolViolation(f"the daemon sent a JSON {type(message).__name__}, not an object: {line[:200]!r}")
    return message


def result_of(message: Dict[str, Any], method: Optional[str]) -> Any:
    """A response's `result`, or its `error` raised as an `RPCError`."""
    if "error" in message:
        raise RPCError.from_reply(message["error"], method)
    if "result" not in message:
        raise ProtocolViolation(f"a response with neither result nor error: {message!r}")
    return message["result"]


def without_none(params: Dict[str, Any]) -> Dict[str, Any]:
    """The params that were given (the daemon counts null as absent anyway; this keeps requests short)."""
    return {k: v for k, v in params.items() if v is not None}


def submit_params(
    plan_path: Optional[PathLike],
    plan_text: Optional[str],
    plan_name: Optional[str],
    base_dir: Optional[PathLike],
    goal: Optional[str],
    inputs: Optional[Dict[str, Any]],
    idempotency_key: Optional[str],
    cwd: Optional[PathLike],
) -> Dict[str, Any]:
    if (plan_path is None) == (plan_text is None):
        raise ValueError("give exactly one of plan_path (a plan file) and plan_text (the plan itself)")
    return without_none(
        {
            # The daemon wants an absolute path; a relative one means this process's directory, as for the CLI.
            "plan_path": os.path.abspath(os.fspath(plan_path)) if plan_path is not None else None,
            "plan": plan_text,
            "plan_name": plan_name,
            "base_dir": os.path.abspath(os.fspath(base_dir)) if base_dir is not None else None,
            "goal": goal,
            "inputs": inputs,
            "cwd": os.fspath(cwd) if cwd is not None else os.getcwd(),
            "idempotency_key": idempotency_key,
        }
    )


def render_of(result: Any) -> str:
    """The rendered text of a `job.transcript` call with a `format`: the result itself when it is a
    string, else its first string member among those a renderer would name."""
    if isinstance(result, str):
        return result
    if isinstance(result, dict):
        if "events" in result and "format" not in result:
            # A daemon without renderings ignores the unknown param and sends a page of events.
            raise Unsupported("this daemon does not render transcripts (job.transcript ignored 'format'); use transcript()")
        for key in ("text", "content", "rendered", "output", "transcript"):
            if isinstance(result.get(key), str):
                return str(result[key])
    raise ProtocolViolation(f"job.transcript with a format returned no text: {str(result)[:200]}")


@dataclass
class WatchRoute:
    """One `job.watch` request of a connection and where its events go."""

    request_id: int
    job: str
    #: The seq of the last event handed to this watch.
    last_seq: int
    sink: Any = field(repr=False)


class EventRouter:
    """Sends each `job.event` notification to the watch it belongs to.

    A daemon that names the watch in the event (`params.watch`, its request id) is followed exactly.
    Otherwise the event goes to the watches of its job: with one such watch per connection that is
    exact; with several, each takes only the next seq it lacks (every watch's own stream has no gaps,
    so each still sees every event once, in order).
    """

    def __init__(self) -> None:
        self.watches: Dict[int, WatchRoute] = {}
        #: Requests whose answer nobody waits for any more (a watch left early, a call that timed out),
        #: with the job of each such watch, whose events may still arrive.
        self.abandoned: Dict[int, Optional[str]] = {}

    def add(self, route: WatchRoute) -> None:
        self.watches[route.request_id] = route

    def abandon(self, request_id: int) -> None:
        route = self.watches.pop(request_id, None)
        self.abandoned[request_id] = route.job if route else None

    def settle(self, request_id: int) -> bool:
        """Whether a response with this id was abandoned (and is to be dropped); forgets it."""
        if request_id in self.abandoned:
            del self.abandoned[request_id]
            return True
        return False

    def routes_for(self, params: Any) -> List[WatchRoute]:
        """The watches that take this event; their `last_seq` is advanced."""
        if not isinstance(params, dict) or not isinstance(params.get("seq"), int):
            raise ProtocolViolation(f"a job.event without a seq: {str(params)[:200]}")
        seq: int = params["seq"]
        named = params.get("watch")
        candidates: List[WatchRoute]
        if named is not None:
            route = self.watches.get(named) if isinstance(named, int) else None
            candidates = [route] if route else []
            exact = True
        else:
            job = params.get("job")
            candidates = [w for w in self.watches.values() if w.job == job]
            exact = len(candidates) == 1 and job not in self.abandoned.values()
        taken = []
        for route in candidates:
            if seq == route.last_seq + 1 or (exact and seq > route.last_seq):
                route.last_seq = seq
                taken.append(route)
        return taken
