"""The asyncio client: one Unix-socket connection shared by any number of concurrent calls and watches.

A reader task files each incoming line: a response with the call that waits for it, a `job.event`
with its watch. Lines of any length are read (the daemon's are not bounded).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any, AsyncGenerator, AsyncIterator, Dict, List, Optional, Tuple

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
from .client import DEFAULT_TIMEOUT
from .errors import AgentdError, ConnectionFailed, ConnectionLost, DaemonNotRunning, RPCError
from .results import BackupResult, DaemonStatus, Event, Gate, GateDecision, Job, JSONObject, PruneResult, SearchHit, TranscriptPage, VerifyResult

_READ_SIZE = 1 << 16


class AsyncClient:
    """A connection to the daemon for asyncio code: `client = await AsyncClient.connect()`, or
    `async with await AsyncClient.connect() as client`. Calls may run concurrently on it.

    `timeout` (seconds) bounds connecting and every call that should answer at once; `wait` and
    `watch` wait as long as the job runs unless given their own.
    """

    def __init__(self, socket_path: str, timeout: Optional[float]) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._next_id = 0
        self._write_lock = asyncio.Lock()
        self._writer: Optional[asyncio.StreamWriter] = None
        self._reader_task: Optional["asyncio.Task[None]"] = None
        self._pending: Dict[Any, "asyncio.Future[Dict[str, Any]]"] = {}
        self._router = EventRouter()

    @classmethod
    async def connect(cls, socket_path: Optional[PathLike] = None, timeout: Optional[float] = 30.0) -> "AsyncClient":
        path = os.fspath(socket_path) if socket_path is not None else default_socket_path()
        client = cls(path, timeout)
        await client._connect()
        return client

    # -- connection --------------------------------------------------------------------------------

    async def _connect(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(self.socket_path), self.timeout)
        except (FileNotFoundError, ConnectionRefusedError) as error:
            raise DaemonNotRunning(self.socket_path, error.strerror or str(error)) from None
        except OSError as error:
            raise ConnectionFailed(f"cannot connect to {self.socket_path}: {error}") from None
        self._writer = writer
        self._pending = {}
        self._router = EventRouter()
        self._reader_task = asyncio.ensure_future(self._read_loop(reader, self._pending, self._router))

    async def close(self) -> None:
        writer, task = self._writer, self._reader_task
        self._writer, self._reader_task = None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _read_loop(
        self, reader: asyncio.StreamReader, pending: Dict[Any, "asyncio.Future[Dict[str, Any]]"], router: EventRouter
    ) -> None:
        buffer = bytearray()
        scanned = 0
        failure: AgentdError = ConnectionLost("agentd closed the connection")
        try:
            while True:
                newline = buffer.find(b"\n", scanned)
                if newline < 0:
                    scanned = len(buffer)
                    chunk = await reader.read(_READ_SIZE)
                    if not chunk:
                        break
                    buffer += chunk
                    continue
                line = bytes(buffer[:newline]).rstrip(b"\r")
                del buffer[: newline + 1]
                scanned = 0
                if line:
                    self._dispatch(decode_line(line), pending, router)
        except OSError as error:
            failure = ConnectionLost(f"the connection to agentd failed: {error}")
        except AgentdError as error:
            failure = error
        finally:
            self._fail_all(failure, pending, router)

    def _dispatch(self, message: Dict[str, Any], pending: Dict[Any, "asyncio.Future[Dict[str, Any]]"], router: EventRouter) -> None:
        if "id" not in message:
            if message.get("method") == "job.event":
                for route in router.routes_for(message.get("params")):
                    route.sink.put_nowait(("event", message["params"]))
            return
        request_id = message["id"]
        if request_id is None:
            # An error about the connection or a frame of ours: every waiter learns of it.
            error = RPCError.from_reply(message.get("error"))
            self._fail_all(error, pending, router)
            return
        watch: Optional[WatchRoute] = router.watches.pop(request_id, None)
        if watch is not None:
            watch.sink.put_nowait(("result", message))
        elif router.settle(request_id):
            pass
        else:
            future = pending.pop(request_id, None)
            if future is not None and not future.done():
                future.set_result(message)

    @staticmethod
    def _fail_all(error: AgentdError, pending: Dict[Any, "asyncio.Future[Dict[str, Any]]"], router: EventRouter) -> None:
        for future in pending.values():
            if not future.done():
                future.set_exception(error)
        pending.clear()
        for route in router.watches.values():
            route.sink.put_nowait(("error", error))
        router.watches.clear()

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    async def _send(self, request_id: int, method: str, params: Optional[Dict[str, Any]]) -> None:
        """Writes a request whose reply (or events) the caller has already registered for: they can
        arrive before this returns."""
        writer = self._writer
        if writer is None or self._reader_task is None or self._reader_task.done():
            raise ConnectionLost("the client is not connected")
        async with self._write_lock:
            try:
                writer.write(encode_request(request_id, method, params))
                await writer.drain()
            except OSError as error:
                raise ConnectionLost(f"cannot send to agentd: {error}") from None

    async def call(self, method: str, params: Optional[Dict[str, Any]] = None, timeout: Optional[float] = DEFAULT_TIMEOUT) -> Any:
        """Any method by name: its decoded `result`, or its error raised as an `RPCError`.
        `timeout` defaults to the client's; None waits for ever (`asyncio.TimeoutError` when it passes)."""
        future: "asyncio.Future[Dict[str, Any]]" = asyncio.get_running_loop().create_future()
        pending, router = self._pending, self._router
        request_id = self._new_id()
        pending[request_id] = future
        try:
            await self._send(request_id, method, params)
        except BaseException:
            pending.pop(request_id, None)
            raise
        limit = self.timeout if timeout is DEFAULT_TIMEOUT else timeout
        try:
            message = await asyncio.wait_for(asyncio.shield(future), limit)
        except asyncio.TimeoutError:
            if pending.pop(request_id, None) is not None:
                router.abandon(request_id)
            raise
        return result_of(message, method)

    # -- jobs --------------------------------------------------------------------------------------

    async def status(self) -> DaemonStatus:
        """`daemon.status`."""
        return DaemonStatus.from_json(await self.call("daemon.status"))

    async def submit(
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
        """`job.submit` (see `Client.submit`)."""
        params = submit_params(plan_path, plan_text, plan_name, base_dir, goal, inputs, idempotency_key, cwd)
        return Job.from_json(await self.call("job.submit", params))

    async def get(self, job_id: str) -> Job:
        """`job.get`: the job with `completed_calls` and `usage`."""
        return Job.from_json(await self.call("job.get", {"id": job_id}))

    async def list(self, status: Optional[str] = None, limit: Optional[int] = None) -> List[Job]:
        """`job.list`: the newest `limit` jobs (100 by default), oldest first."""
        result = await self.call("job.list", without_none({"status": status, "limit": limit}))
        return [Job.from_json(job) for job in result.get("jobs", [])]

    async def cancel(self, job_id: str) -> Job:
        """`job.cancel`: the job as it now stands. A finished job is returned unchanged (check `status`)."""
        return Job.from_json(await self.call("job.cancel", {"id": job_id}))

    async def wait(self, job_id: str, timeout: Optional[float] = None) -> Job:
        """`job.wait`: the job once it has finished (`asyncio.TimeoutError` after `timeout`, if given)."""
        return Job.from_json(await self.call("job.wait", {"id": job_id}, timeout=timeout))

    def watch(self, job_id: str, since: int = 0, reconnect: Optional[float] = None) -> "AsyncWatch":
        """`job.watch` as an async iterator of events (see `Client.watch`)."""
        return AsyncWatch(self, job_id, since, reconnect)

    async def transcript(self, job_id: str, after_seq: int = 0, limit: Optional[int] = None) -> TranscriptPage:
        """`job.transcript`: one page of the job's recorded events after `after_seq`."""
        params = without_none({"id": job_id, "after_seq": after_seq, "limit": limit})
        return TranscriptPage.from_json(await self.call("job.transcript", params))

    async def transcript_pages(
        self, job_id: str, after_seq: int = 0, limit: Optional[int] = None
    ) -> AsyncIterator[TranscriptPage]:
        """Every page of the job's recorded events after `after_seq`, following `next_after_seq`."""
        while True:
            page = await self.transcript(job_id, after_seq, limit)
            yield page
            if page.next_after_seq is None:
                return
            after_seq = page.next_after_seq

    async def events(self, job_id: str, after_seq: int = 0, page_size: Optional[int] = None) -> AsyncIterator[Event]:
        """Every event recorded so far, page by page."""
        async for page in self.transcript_pages(job_id, after_seq, page_size):
            for event in page.events:
                yield event

    async def render_transcript(self, job_id: str, format: str = "text") -> str:
        """The job's transcript rendered by the daemon: `text`, `md`, `html` or `jsonl`."""
        return render_of(await self.call("job.transcript", {"id": job_id, "format": format}))

    async def prune(self, before: int, statuses: Optional[List[str]] = None, dry_run: bool = False) -> PruneResult:
        """`job.prune`: remove (or with `dry_run`, count) whole jobs finished before `before` (Unix ms)."""
        params = without_none({"before": before, "statuses": statuses, "dry_run": dry_run})
        return PruneResult.from_json(await self.call("job.prune", params))

    # -- gates -------------------------------------------------------------------------------------

    async def pending_gates(self) -> List[Gate]:
        """`gate.list`: every tool call a gate holds for a person's decision, oldest first."""
        result = await self.call("gate.list")
        return [Gate.from_json(gate) for gate in result.get("gates", [])]

    async def approve(self, gate: Gate, *, arguments: Optional[Dict[str, Any]] = None, note: Optional[str] = None) -> GateDecision:
        """`gate.decide`: let the held call run — as proposed, or with `arguments` instead (recorded as
        yours). `GateNotWaiting` if it was decided already or holds another request."""
        return await self.decide(gate.job, gate.gate, gate.request_sha256, "approve", note=note, arguments=arguments)

    async def reject(self, gate: Gate, note: str) -> GateDecision:
        """`gate.decide`: refuse the held call; the actor reads `note` as its result."""
        return await self.decide(gate.job, gate.gate, gate.request_sha256, "reject", note=note)

    async def decide(
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
        return GateDecision.from_json(await self.call("gate.decide", params))

    # -- the record --------------------------------------------------------------------------------

    async def search(
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
        result = await self.call("audit.search", params)
        return [SearchHit.from_json(hit) for hit in result.get("hits", [])]

    async def verify(self, job_id: Optional[str] = None) -> VerifyResult:
        """`audit.verify`: recompute one job's hash chain, or every job's when `job_id` is None."""
        return VerifyResult.from_json(await self.call("audit.verify", without_none({"job": job_id}), timeout=None))

    async def stats(self, *, plan: Optional[str] = None, since: Optional[int] = None) -> JSONObject:
        """`stats.get`: critic analytics per plan and role, as `agentd stats --json` prints them; `since`
        is Unix ms."""
        return dict(await self.call("stats.get", without_none({"plan": plan, "since": since})))

    async def backup(self, path: Optional[PathLike] = None) -> BackupResult:
        """`daemon.backup`: an online, checked copy of the database, written by the daemon to `path` (made
        absolute; it must not exist), or without one into `backups/` beside the database."""
        params = without_none({"path": os.path.abspath(os.fspath(path)) if path is not None else None})
        return BackupResult.from_json(await self.call("daemon.backup", params, timeout=None))


class AsyncWatch:
    """The events of one `job.watch`, as an async iterator; `job` is the final job once it is
    exhausted and `last_seq` the seq of the last event delivered."""

    def __init__(self, client: AsyncClient, job_id: str, since: int, reconnect: Optional[float]) -> None:
        self.client = client
        self.job_id = job_id
        self.last_seq = since
        self.reconnect = reconnect
        self.job: Optional[Job] = None
        self._iterator = self._events()

    def __aiter__(self) -> "AsyncWatch":
        return self

    async def __anext__(self) -> Event:
        return await self._iterator.__anext__()

    async def aclose(self) -> None:
        await self._iterator.aclose()

    async def _events(self) -> AsyncGenerator[Event, None]:
        while True:
            try:
                async for event in self._stream():
                    yield event
                return
            except ConnectionLost as error:
                if self.reconnect is None:
                    raise ConnectionLost(f"{error}; resume with since={self.last_seq}", self.last_seq) from None
                await self._reconnect(self.reconnect, error)

    async def _reconnect(self, patience: float, cause: ConnectionLost) -> None:
        deadline = time.monotonic() + patience
        while True:
            try:
                await self.client.close()
                await self.client._connect()
                return
            except ConnectionFailed:
                if time.monotonic() >= deadline:
                    raise ConnectionLost(
                        f"{cause}; no daemon answered for {patience}s; resume with since={self.last_seq}", self.last_seq
                    ) from None
                await asyncio.sleep(0.1)

    async def _stream(self) -> AsyncIterator[Event]:
        client = self.client
        sink: "asyncio.Queue[Tuple[str, Any]]" = asyncio.Queue()
        router = client._router
        request_id = client._new_id()
        router.add(WatchRoute(request_id, self.job_id, self.last_seq, sink))
        finished = False
        try:
            await client._send(request_id, "job.watch", {"id": self.job_id, "since": self.last_seq})
            while True:
                kind, item = await sink.get()
                if kind == "event":
                    event = Event.from_json(item)
                    self.last_seq = event.seq
                    yield event
                elif kind == "result":
                    finished = True
                    self.job = Job.from_json(result_of(item, "job.watch"))
                    return
                else:
                    finished = True
                    raise item
        finally:
            if not finished and client._router is router:
                router.abandon(request_id)
