"""The blocking client: one Unix-socket connection to `agentd serve`.

Requests are answered by id, so calls may be made while a watch is being iterated on the same client
(its events are kept until the iteration asks for them). A `Client` is not thread-safe: use one per
thread, or the asyncio client.
"""

from __future__ import annotations

import collections
import json
import os
import socket
import time
from typing import Any, Deque, Dict, Generator, Iterator, List, Optional

from ._protocol import (
    EventRouter,
    PathLike,
    WatchRoute,
    decode_line,
    default_socket_path,
    encode_request,
    render_of,
    result_of,
    submit_params,
    without_none,
)
from .errors import ConnectionFailed, ConnectionLost, DaemonNotRunning, RPCError
from .results import BackupResult, DaemonStatus, Event, Gate, GateDecision, Job, JSONObject, PruneResult, SearchHit, TranscriptPage, VerifyResult

_READ_SIZE = 1 << 16


class _Default:
    """The client's own timeout, as a default argument distinct from None (no limit)."""

    def __repr__(self) -> str:
        return "the client's timeout"


DEFAULT_TIMEOUT: Any = _Default()


class Client:
    """A connection to the daemon.

    `socket_path` defaults to the CLI's (`$AGENTD_SOCKET`, ...). `timeout` (seconds) bounds connecting
    and every call that should answer at once; `wait` and `watch` wait as long as the job runs unless
    given their own. Use it as a context manager, or call `close()`.
    """

    def __init__(self, socket_path: Optional[PathLike] = None, timeout: Optional[float] = 30.0) -> None:
        self.socket_path = os.fspath(socket_path) if socket_path is not None else default_socket_path()
        self.timeout = timeout
        self._sock: Optional[socket.socket] = None
        self._next_id = 0
        self._connect()

    # -- connection --------------------------------------------------------------------------------

    def _connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except (FileNotFoundError, ConnectionRefusedError) as error:
            sock.close()
            raise DaemonNotRunning(self.socket_path, error.strerror or str(error)) from None
        except OSError as error:
            sock.close()
            raise ConnectionFailed(f"cannot connect to {self.socket_path}: {error}") from None
        self._sock = sock
        self._buffer = bytearray()
        self._scanned = 0
        self._responses: Dict[Any, Dict[str, Any]] = {}
        self._router = EventRouter()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_message(self, deadline: Optional[float]) -> Dict[str, Any]:
        """The next message on the connection; `TimeoutError` at the deadline (nothing is lost: a
        partial line stays buffered)."""
        sock = self._sock
        if sock is None:
            raise ConnectionFailed("the client is closed")
        while True:
            newline = self._buffer.find(b"\n", self._scanned)
            if newline >= 0:
                line = bytes(self._buffer[:newline]).rstrip(b"\r")
                del self._buffer[: newline + 1]
                self._scanned = 0
                if line:
                    return decode_line(line)
                continue
            self._scanned = len(self._buffer)
            if deadline is None:
                sock.settimeout(None)
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("agentd did not answer in time")
                sock.settimeout(remaining)
            try:
                chunk = sock.recv(_READ_SIZE)
            except socket.timeout:
                raise TimeoutError("agentd did not answer in time") from None
            except OSError as error:
                self.close()
                raise ConnectionLost(f"the connection to agentd failed: {error}") from None
            if not chunk:
                self.close()
                raise ConnectionLost("agentd closed the connection")
            self._buffer += chunk

    def _dispatch(self, message: Dict[str, Any]) -> None:
        """Files one incoming message: an event with its watch(es), a response under its id."""
        if "id" not in message:
            if message.get("method") == "job.event":
                for route in self._router.routes_for(message.get("params")):
                    route.sink.append(message["params"])
            return  # other notifications: none today; ignored as the protocol asks
        request_id = message["id"]
        if request_id is None:
            # An error about the connection or a frame of ours (too many clients, permission denied,
            # a frame too large): it concerns whoever waits now.
            raise RPCError.from_reply(message.get("error"))
        if not self._router.settle(request_id):
            self._responses[request_id] = message

    def _send(self, method: str, params: Optional[Dict[str, Any]]) -> int:
        if self._sock is None:
            raise ConnectionFailed("the client is closed")
        self._next_id += 1
        request_id = self._next_id
        try:
            # A read may have left a short timeout (what remained of its deadline) on the socket.
            self._sock.settimeout(self.timeout)
            self._sock.sendall(encode_request(request_id, method, params))
        except OSError as error:
            self.close()
            raise ConnectionLost(f"cannot send to agentd: {error}") from None
        return request_id

    def _response(self, request_id: int, deadline: Optional[float]) -> Dict[str, Any]:
        try:
            while request_id not in self._responses:
                self._dispatch(self._read_message(deadline))
        except TimeoutError:
            self._router.abandon(request_id)
            raise
        return self._responses.pop(request_id)

    def _deadline(self, timeout: Optional[float]) -> Optional[float]:
        return None if timeout is None else time.monotonic() + timeout

    def call(self, method: str, params: Optional[Dict[str, Any]] = None, timeout: Optional[float] = DEFAULT_TIMEOUT) -> Any:
        """Any method by name: its decoded `result`, or its error raised as an `RPCError`.
        `timeout` defaults to the client's; None waits for ever."""
        request_id = self._send(method, params)
        message = self._response(request_id, self._deadline(self.timeout if timeout is DEFAULT_TIMEOUT else timeout))
        return result_of(message, method)

    # -- jobs --------------------------------------------------------------------------------------

    def status(self) -> DaemonStatus:
        """`daemon.status`."""
        return DaemonStatus.from_json(self.call("daemon.status"))

    def submit(
        self,
        plan_path: Optional[PathLike] = None,
        *,
        plan_text: Optional[str] = None,
        goal: Optional[str] = None,
        inputs: Optional[Dict[str, Any]] = None,
        idempotency_key: Optional[str] = None,
        cwd: Optional[PathLike] = None,
        plan_name: Optional[str] = None,
        base_dir: Optional[PathLike] = None,
    ) -> Job:
        """`job.submit`: a job from a plan file (`plan_path`, made absolute here) or a plan's text
        (`plan_text`). The same `idempotency_key` again returns the job it first created, with
        `created` False. `cwd` defaults to this process's directory, as for the CLI."""
        params = submit_params(plan_path, plan_text, plan_name, base_dir, goal, inputs, idempotency_key, cwd)
        return Job.from_json(self.call("job.submit", params))

    def get(self, job_id: str) -> Job:
        """`job.get`: the job with `completed_calls` and `usage`."""
        return Job.from_json(self.call("job.get", {"id": job_id}))

    def list(self, status: Optional[str] = None, limit: Optional[int] = None) -> List[Job]:
        """`job.list`: the newest `limit` jobs (100 by default), oldest first."""
        result = self.call("job.list", without_none({"status": status, "limit": limit}))
        return [Job.from_json(job) for job in result.get("jobs", [])]

    def cancel(self, job_id: str) -> Job:
        """`job.cancel`: the job as it now stands. A finished job is returned unchanged (check `status`)."""
        return Job.from_json(self.call("job.cancel", {"id": job_id}))

    def wait(self, job_id: str, timeout: Optional[float] = None) -> Job:
        """`job.wait`: the job once it has finished. `TimeoutError` after `timeout` seconds, if given
        (the job goes on)."""
        return Job.from_json(self.call("job.wait", {"id": job_id}, timeout=timeout))

    def watch(self, job_id: str, since: int = 0, reconnect: Optional[float] = None) -> "Watch":
        """`job.watch`: an iterator of the job's events with `seq > since`, history then live, each
        once and in order; it ends after the event that finished the job, and `Watch.job` is then the
        final job.

        A lost connection raises `ConnectionLost` carrying `last_seq` to resume from, unless
        `reconnect` gives the seconds to keep trying to connect again (a daemon restarting, say): the
        watch then resumes from the last event it delivered, so nothing is missed or repeated. The
        client's new connection replaces the lost one for every later call.
        """
        return Watch(self, job_id, since, reconnect)

    def transcript(self, job_id: str, after_seq: int = 0, limit: Optional[int] = None) -> TranscriptPage:
        """`job.transcript`: one page of the job's recorded events after `after_seq`."""
        params = without_none({"id": job_id, "after_seq": after_seq, "limit": limit})
        return TranscriptPage.from_json(self.call("job.transcript", params))

    def transcript_pages(self, job_id: str, after_seq: int = 0, limit: Optional[int] = None) -> Iterator[TranscriptPage]:
        """Every page of the job's recorded events after `after_seq`, following `next_after_seq`."""
        while True:
            page = self.transcript(job_id, after_seq, limit)
            yield page
            if page.next_after_seq is None:
                return
            after_seq = page.next_after_seq

    def events(self, job_id: str, after_seq: int = 0, page_size: Optional[int] = None) -> Iterator[Event]:
        """Every event recorded so far, page by page (unlike `watch`, it does not wait for more)."""
        for page in self.transcript_pages(job_id, after_seq, page_size):
            yield from page.events

    def render_transcript(self, job_id: str, format: str = "text") -> str:
        """The job's transcript rendered by the daemon: `text`, `md`, `html` or `jsonl`."""
        return render_of(self.call("job.transcript", {"id": job_id, "format": format}))

    def prune(self, before: int, statuses: Optional[List[str]] = None, dry_run: bool = False) -> PruneResult:
        """`job.prune`: remove (or with `dry_run`, count) whole jobs finished before `before` (Unix ms)."""
        params = without_none({"before": before, "statuses": statuses, "dry_run": dry_run})
        return PruneResult.from_json(self.call("job.prune", params))

    # -- gates -------------------------------------------------------------------------------------

    def pending_gates(self) -> List[Gate]:
        """`gate.list`: every tool call a gate holds for a person's decision, oldest first."""
        result = self.call("gate.list")
        return [Gate.from_json(gate) for gate in result.get("gates", [])]

    def approve(self, gate: Gate, *, arguments: Optional[Dict[str, Any]] = None, note: Optional[str] = None) -> GateDecision:
        """`gate.decide`: let the held call run — as proposed, or with `arguments` instead (recorded as
        yours). `GateNotWaiting` if it was decided already or holds another request."""
        return self.decide(gate.job, gate.gate, gate.request_sha256, "approve", note=note, arguments=arguments)

    def reject(self, gate: Gate, note: str) -> GateDecision:
        """`gate.decide`: refuse the held call; the actor reads `note` as its result."""
        return self.decide(gate.job, gate.gate, gate.request_sha256, "reject", note=note)

    def decide(
        self,
        job_id: str,
        gate: str,
        request_sha256: str,
        decision: str,
        *,
        note: Optional[str] = None,
        arguments: Optional[Dict[str, Any]] = None,
    ) -> GateDecision:
        """`gate.decide` with every param: `decision` is `approve` or `reject`."""
        params = without_none(
            {
                "id": job_id,
                "gate": gate,
                "request_sha256": request_sha256,
                "decision": decision,
                "note": note,
                "arguments": json.dumps(arguments) if arguments is not None else None,
            }
        )
        return GateDecision.from_json(self.call("gate.decide", params))

    # -- the record --------------------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        job: Optional[str] = None,
        role: Optional[str] = None,
        kind: Optional[str] = None,
        since: Optional[int] = None,
        limit: Optional[int] = None,
        order: Optional[str] = None,
    ) -> List[SearchHit]:
        """`audit.search`: full-text search (FTS5 syntax) over every event, newest first (`order="rank"`:
        best first); `since` is Unix ms; `limit` defaults to 20."""
        params = without_none({"query": query, "job": job, "role": role, "kind": kind, "since": since, "limit": limit, "order": order})
        result = self.call("audit.search", params)
        return [SearchHit.from_json(hit) for hit in result.get("hits", [])]

    def verify(self, job_id: Optional[str] = None) -> VerifyResult:
        """`audit.verify`: recompute one job's hash chain, or every job's when `job_id` is None."""
        return VerifyResult.from_json(self.call("audit.verify", without_none({"job": job_id}), timeout=None))

    def stats(self, *, plan: Optional[str] = None, since: Optional[int] = None) -> JSONObject:
        """`stats.get`: critic analytics per plan and role, as `agentd stats --json` prints them; `since`
        is Unix ms."""
        return dict(self.call("stats.get", without_none({"plan": plan, "since": since})))

    def backup(self, path: Optional[PathLike] = None) -> BackupResult:
        """`daemon.backup`: an online, checked copy of the database, written by the daemon to `path` (made
        absolute; it must not exist), or without one into `backups/` beside the database."""
        params = without_none({"path": os.path.abspath(os.fspath(path)) if path is not None else None})
        return BackupResult.from_json(self.call("daemon.backup", params, timeout=None))


class Watch:
    """The events of one `job.watch`, as an iterator; `job` is the final job once it is exhausted and
    `last_seq` the seq of the last event delivered. Leaving the loop early is fine: later events of
    this watch are dropped."""

    def __init__(self, client: Client, job_id: str, since: int, reconnect: Optional[float]) -> None:
        self.client = client
        self.job_id = job_id
        self.last_seq = since
        self.reconnect = reconnect
        self.job: Optional[Job] = None
        self._iterator = self._events()

    def __iter__(self) -> "Watch":
        return self

    def __next__(self) -> Event:
        return next(self._iterator)

    def close(self) -> None:
        self._iterator.close()

    def _events(self) -> Generator[Event, None, None]:
        while True:
            try:
                yield from self._stream()
                return
            except ConnectionLost as error:
                if self.reconnect is None:
                    raise ConnectionLost(f"{error}; resume with since={self.last_seq}", self.last_seq) from None
                self._reconnect(self.reconnect, error)

    def _reconnect(self, patience: float, cause: ConnectionLost) -> None:
        deadline = time.monotonic() + patience
        while True:
            try:
                self.client.close()
                self.client._connect()
                return
            except (DaemonNotRunning, ConnectionFailed):
                if time.monotonic() >= deadline:
                    raise ConnectionLost(
                        f"{cause}; no daemon answered for {patience}s; resume with since={self.last_seq}", self.last_seq
                    ) from None
                time.sleep(0.1)

    def _stream(self) -> Iterator[Event]:
        client = self.client
        sink: Deque[Dict[str, Any]] = collections.deque()
        request_id = client._send("job.watch", {"id": self.job_id, "since": self.last_seq})
        route = WatchRoute(request_id, self.job_id, self.last_seq, sink)
        router = client._router
        router.add(route)
        finished = False
        try:
            while True:
                while sink:
                    event = Event.from_json(sink.popleft())
                    self.last_seq = event.seq
                    yield event
                if request_id in client._responses:
                    # Every event of the watch came before its response, on the same connection.
                    router.watches.pop(request_id, None)
                    finished = True
                    self.job = Job.from_json(result_of(client._responses.pop(request_id), "job.watch"))
                    return
                client._dispatch(client._read_message(None))
        finally:
            if not finished and client._router is router:
                router.abandon(request_id)
