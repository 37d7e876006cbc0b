"""The exceptions the client raises.

Every error the daemon answers with becomes an `RPCError` (or the subclass for its code) carrying the
JSON-RPC `code`, `message` and `data` as sent. Failures of the connection itself are `ConnectionFailed`
subclasses. The codes are those of docs/protocol.md ("Errors").
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type


class AgentdError(Exception):
    """The base of every exception this package raises."""


class ConnectionFailed(AgentdError):
    """The socket could not be used: not connected, closed, or a reply that was not JSON-RPC."""


class DaemonNotRunning(ConnectionFailed):
    """Nothing listens on the socket (it is missing, or the connection was refused)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"agentd is not running (nothing is listening on {path}: {reason}); start it with `agentd serve`")
        self.path = path


class ConnectionLost(ConnectionFailed):
    """The daemon closed the connection before answering (it stopped, or it cut off a client that did not read).

    `last_seq` is set when the connection was lost during a watch: the seq of the last event delivered,
    to resume from with `watch(job, since=last_seq)`.
    """

    def __init__(self, message: str, last_seq: Optional[int] = None) -> None:
        super().__init__(message)
        self.last_seq = last_seq


class ProtocolViolation(ConnectionFailed):
    """The daemon sent something that is not a JSON-RPC message this client understands."""


class Unsupported(AgentdError):
    """The daemon does not offer what was asked (it predates it): it ignored a param the call needs."""


class RPCError(AgentdError):
    """An error reply from the daemon: `code` and `message` as sent, and `data` when the daemon gave it."""

    #: The JSON-RPC error code this class stands for (0 on the base class: any code).
    CODE = 0

    def __init__(self, code: int, message: str, data: Any = None, method: Optional[str] = None) -> None:
        super().__init__(f"{message} (code {code}{', method ' + method if method else ''})")
        self.code = code
        self.message = message
        self.data = data
        self.method = method

    @staticmethod
    def from_reply(error: Any, method: Optional[str] = None) -> "RPCError":
        """The exception for a reply's `error` member, of the subclass for its code when there is one."""
        if not isinstance(error, dict) or not isinstance(error.get("code"), int):
            raise ProtocolViolation(f"an error reply without an integer code: {error!r}")
        code: int = error["code"]
        message = error.get("message")
        cls = _BY_CODE.get(code, RPCError)
        return cls(code, message if isinstance(message, str) else repr(message), error.get("data"), method)


class ParseError(RPCError):
    """-32700: the daemon could not parse the line as JSON."""

    CODE = -32700


class InvalidRequest(RPCError):
    """-32600: the line was JSON but not a valid request."""

    CODE = -32600


class MethodNotFound(RPCError):
    """-32601: the daemon has no such method (an older daemon than the client expects, say)."""

    CODE = -32601


class InvalidParams(RPCError):
    """-32602: a parameter is missing, of the wrong type or out of range; the message names it."""

    CODE = -32602


class FrameTooLarge(RPCError):
    """-32001: the request line exceeded the daemon's frame limit (1 MiB by default)."""

    CODE = -32001


class NoSuchJob(RPCError):
    """-32002: the id names no job."""

    CODE = -32002


class InvalidPlan(RPCError):
    """-32003: the plan cannot be read or is invalid; the message gives FILE:LINE:COL: FIELD: MESSAGE."""

    CODE = -32003


class ShuttingDown(RPCError):
    """-32004: the daemon is draining for shutdown and takes no new jobs."""

    CODE = -32004


class StorageError(RPCError):
    """-32005: SQLite failed a read or a write."""

    CODE = -32005


class WorkspaceInUse(RPCError):
    """-32006: another queued or running job works in the same workspace; `data` names it."""

    CODE = -32006


class TooManyClients(RPCError):
    """-32007: the daemon already serves as many connections as it allows."""

    CODE = -32007


class PermissionDenied(RPCError):
    """-32008: this user may not use the daemon, or a submitter rule refused the request."""

    CODE = -32008


class TooManyQueuedJobs(RPCError):
    """-32009: a queue limit was reached; `data` gives the limit, its value and the count."""

    CODE = -32009


class StorageUnavailable(RPCError):
    """-32010: a storage fault (a full disk, an I/O error) refuses writes until it ends."""

    CODE = -32010


class WorkspaceRefused(RPCError):
    """-32011: the job's workspace contains the daemon's own files."""

    CODE = -32011


class ReplyBacklog(RPCError):
    """-32012: the client left more than 64 MiB of output unread; the daemon closes the connection."""

    CODE = -32012


class GateNotWaiting(RPCError):
    """-32013: the gate was decided already, never asked, or holds another request than the one named."""

    CODE = -32013


_BY_CODE: Dict[int, Type[RPCError]] = {
    cls.CODE: cls
    for cls in (
        ParseError,
        InvalidRequest,
        MethodNotFound,
        InvalidParams,
        FrameTooLarge,
        NoSuchJob,
        InvalidPlan,
        ShuttingDown,
        StorageError,
        WorkspaceInUse,
        TooManyClients,
        PermissionDenied,
        TooManyQueuedJobs,
        StorageUnavailable,
        WorkspaceRefused,
        ReplyBacklog,
        GateNotWaiting,
    )
}
