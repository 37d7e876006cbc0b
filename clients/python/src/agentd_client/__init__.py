"""A client for agentd: submit jobs, follow them, and read their record over the daemon's Unix socket.

    from agentd_client import Client

    with Client() as agentd:
        job = agentd.submit("plans/demo.yaml", goal="write release notes", idempotency_key="notes-0.1")
        for event in agentd.watch(job.id):
            print(event.seq, event.kind, event.role or "")

`AsyncClient` does the same for asyncio. The protocol: docs/protocol.md in the agentd repository.
"""

from ._protocol import PROTOCOL_VERSION, default_socket_path
from .aio import AsyncClient, AsyncWatch
from .client import Client, Watch
from .errors import (
    AgentdError,
    ConnectionFailed,
    ConnectionLost,
    DaemonNotRunning,
    FrameTooLarge,
    GateNotWaiting,
    InvalidParams,
    InvalidPlan,
    InvalidRequest,
    MethodNotFound,
    NoSuchJob,
    ParseError,
    PermissionDenied,
    ProtocolViolation,
    ReplyBacklog,
    RPCError,
    ShuttingDown,
    StorageError,
    StorageUnavailable,
    TooManyClients,
    TooManyQueuedJobs,
    Unsupported,
    WorkspaceInUse,
    WorkspaceRefused,
)
from .results import (
    BackupResult,
    ChainReport,
    DaemonStatus,
    Event,
    Gate,
    GateDecision,
    Job,
    JobStatus,
    PruneResult,
    SearchHit,
    TranscriptPage,
    VerifyResult,
)

__version__ = "0.1.0"

__all__ = [
    "PROTOCOL_VERSION",
    "AgentdError",
    "AsyncClient",
    "AsyncWatch",
    "BackupResult",
    "ChainReport",
    "Client",
    "ConnectionFailed",
    "ConnectionLost",
    "DaemonNotRunning",
    "DaemonStatus",
    "Event",
    "FrameTooLarge",
    "Gate",
    "GateDecision",
    "GateNotWaiting",
    "InvalidParams",
    "InvalidPlan",
    "InvalidRequest",
    "Job",
    "JobStatus",
    "MethodNotFound",
    "NoSuchJob",
    "ParseError",
    "PermissionDenied",
    "ProtocolViolation",
    "PruneResult",
    "ReplyBacklog",
    "RPCError",
    "SearchHit",
    "ShuttingDown",
    "StorageError",
    "StorageUnavailable",
    "TooManyClients",
    "TooManyQueuedJobs",
    "TranscriptPage",
    "Unsupported",
    "VerifyResult",
    "Watch",
    "WorkspaceInUse",
    "WorkspaceRefused",
    "default_socket_path",
]
