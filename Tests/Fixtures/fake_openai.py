#!/usr/bin/env python3
"""A fast, fault-injecting fake of the OpenAI chat-completions API, for agentd's tests and benchmark.

Standard library only. HTTP/1.1 is implemented directly on asyncio streams: keep-alive (many
requests per connection, pipelining included), `Connection: close` honoured, request bodies by
`Content-Length` or `Transfer-Encoding: chunked`, `Expect: 100-continue` answered. Every response
carries `Content-Length` (only `truncated` lies about it, on purpose).

Usage
-----
    python3 Tests/Fixtures/fake_openai.py [--port 0] [--host 127.0.0.1] [--expect-key KEY]
        [--max-body BYTES] [--oversized-bytes BYTES] [--delay-seconds S] [--drip-interval S]
        [--retry-after-date-seconds S] [--verbose]

It binds, prints exactly one line `listening PORT` to stdout (flushed), then serves until
SIGTERM or SIGINT and exits 0. `--port 0` (the default) picks a free port; read it from that line.
Nothing else is written to stdout; `--verbose` logs one line per request to stderr.

Endpoints
---------
    POST /v1/chat/completions   (also /chat/completions)  the fake model; see "Replies" and "Modes"
    GET  /v1/models             (also /models)            {"object":"list","data":[...]}, one entry per mode
    GET  /_stats                                          counters, see "Stats"
    POST /_reset                                          zero every counter and the per-model history
    POST /_release                                        let every request mode `gate` holds go on

Other paths get 404 and known paths with the wrong method 405, both with OpenAI-style error bodies.
Bodies larger than `--max-body` (default 16 MiB) get 413 and the connection is closed; a header
block larger than 64 KiB gets 431; a malformed request gets 400 and the connection is closed.

Authorization
-------------
With `--expect-key K`, a request to /v1/chat/completions or /v1/models without the header
`Authorization: Bearer K` gets 401 with
    {"error":{"message":"...","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}
It is counted in `unauthorized` (and `requests`) but not per mode or per model, and does not
advance the "first request fails" history of its model string. /_stats and /_reset never need a key.

Replies (mode `ok`)
-------------------
The reply is derived from the request so each agentd role gets a valid answer:

* Tool call: the request has `tools`, `tool_choice` names a function
  (`{"type":"function","function":{"name":F}}`) and no message has role `tool` yet -> an assistant
  message with `content: null` and one `tool_calls` entry calling F with JSON-encoded arguments
  `{"argv":["echo","hello"]}` for `run_command`, `{"path":"notes.txt"}` for `read_file`,
  `{"path":"notes.txt","content":"hello"}` for `write_file`, `{}` for any other function;
  `finish_reason` is "tool_calls". Once a `tool` message is present, the request is answered
  normally (below).
* JSON requested: `response_format` is `{"type":"json_object","schema":S}` or
  `{"type":"json_schema","json_schema":{"schema":S}}`. By S's `properties`:
      verdict  -> {"verdict":"pass","score":0.9,"feedback":"ok"}
      steps    -> {"steps":["step one","step two"]}
      verified -> {"verified":true,"reason":"ok"}
      other / no schema -> {}
* Otherwise plain text: "done: " + the first 40 characters of the last user message.

The envelope is the standard one:
    {"id":"chatcmpl-N","object":"chat.completion","created":<unix s>,"model":<request model>,
     "choices":[{"index":0,"message":{"role":"assistant","content":...},"finish_reason":"stop"}],
     "usage":{"prompt_tokens":P,"completion_tokens":C,"total_tokens":P+C}}
P = characters of all message contents / 4 (at least 1), C likewise of the reply content (or of
the tool-call arguments). `stream`, `n`, `temperature` and every other parameter are ignored.

Modes
-----
The request's `model` is `MODE` or `MODE:anything`; the suffix lets a test give each request (or
each job) its own model string, because "first request fails" modes keep their history per full
model string. Unknown mode names (e.g. "gpt-4o", "llama3:8b") behave as, and are counted as, `ok`.

    ok                    200, the reply above
    429                   first request per model string: 429 + `Retry-After: 1`; then ok
    429x3                 the first three: 429 + `Retry-After: 1`; then ok (any `429xN`, `500xN`,
                          `503xN` works the same way)
    429-always            always 429 + `Retry-After: 1`
    500                   first request per model string: 500; then ok
    500-always            always 500
    503                   first request per model string: 503 + `Retry-After: 1`; then ok
    503-always            always 503 + `Retry-After: 1`
    400                   always 400 invalid_request_error (a non-retryable client error)
    404                   always 404 model_not_found
    hang                  reads the request, never answers; the connection stays open until the
                          client closes it (or the server stops)
    drip                  sends status line and headers (with the true Content-Length) at once,
                          then the body (a valid ok reply) one byte every `--drip-interval` (0.5 s),
                          the first byte one interval after the headers; closes after the last byte
    truncated             Content-Length says N, half of the (valid) body is sent, then the
                          connection is closed (FIN)
    badjson               200 application/json, body `{"choices": [` (not JSON)
    schema-violation      200, valid envelope, content violates the requested schema:
                          {"verdict":"maybe","score":"high"} for a verdict schema, {"nope":1}
                          otherwise (also when no JSON was requested); a due tool call gets
                          arguments {"nope":1}
    schema-violation-once like schema-violation for the first request per model string, then ok
    notjson-content       200, valid envelope, content is the prose `I think it passes.` even
                          when JSON or a tool call was requested (no tool_calls)
    wrong-content-type    200 `Content-Type: text/html`, body `<html>oops</html>`
    oversized             200, valid envelope whose content is a string of `--oversized-bytes`
                          (64 MiB) 'x' characters, streamed in chunks; the body is a little larger
    reset                 reads the request, then closes the socket with SO_LINGER 0, so the
                          client sees a TCP RST (ECONNRESET) and no response bytes at all
    empty-choices         200, valid envelope with "choices": []
    delay                 waits `--delay-seconds` (2 s), then answers as ok
    gate                  holds the request until `POST /_release` (which lets every request held
                          at that moment go on), then answers as ok; a request whose client leaves
                          meanwhile gets no answer
    429-date              first request per model string: 429 + `Retry-After` as an HTTP date
                          (`Wed, 21 Oct 2026 07:28:00 GMT`) `--retry-after-date-seconds` (2) whole
                          seconds after the next whole second; then ok. The date sent is recorded in
                          `retry_after_dates`
    503-date              the same with 503

All error statuses use the OpenAI error shape
    {"error":{"message":...,"type":...,"param":null,"code":...}}
`hang`, `drip`, `truncated` and `reset` end the connection (after the client leaves, after the
last byte, after half the body, at once); every other mode keeps it alive unless the request asked
for `Connection: close`.

Stats
-----
GET /_stats returns
    {"requests": chat-completion requests received (incl. unauthorized and malformed ones),
     "http_requests": every HTTP request except /_stats and /_reset,
     "unauthorized": requests rejected for a wrong or missing Authorization (only with --expect-key),
     "bad_requests": chat requests whose body was not a JSON object with a string `model`,
     "models_requests": GET /v1/models requests,
     "by_mode": {mode: count}, "by_model": {full model string: count},
     "arrivals": {full model string: [monotonic seconds of each request's arrival, the first 1000]},
     "arrivals_unix": {full model string: [Unix time in seconds of each request's arrival, the first 1000]},
     "retry_after_dates": {full model string: [each HTTP-date Retry-After sent, as Unix seconds]},
     "held": requests mode `gate` holds now,
     "last_body": {mode: the last parsed request body for that mode},
     "idempotency_keys": {full model string: [each request's Idempotency-Key header or null, the first 1000]},
     "connections": {"accepted": n, "open": n}}
`by_mode`, `by_model` and `last_body` only count authorized, well-formed chat requests.
POST /_reset zeroes all of it (except the count of open connections) and forgets which model
strings have already failed, so `429:x` fails once more.
"""

from __future__ import annotations

import argparse
import asyncio
import email.utils
import json
import os
import re
import signal
import socket
import struct
import sys
import time
from http import HTTPStatus

# --------------------------------------------------------------------------------------------
# HTTP plumbing

_STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}
_JSON = b"application/json"
_HEADER_LIMIT = 64 * 1024
_RETRY_AFTER = b"Retry-After: 1\r\n"


def _head(status: int, length: int, keep_alive: bool, content_type: bytes = _JSON, extra: bytes = b"") -> bytes:
    """Status line and headers, ending with the blank line."""
    return b"%sContent-Type: %s\r\nContent-Length: %d\r\nConnection: %s\r\n%s\r\n" % (
        _STATUS_LINES[status],
        content_type,
        length,
        b"keep-alive" if keep_alive else b"close",
        extra,
    )


def _response(status: int, body: bytes, keep_alive: bool, content_type: bytes = _JSON, extra: bytes = b"") -> bytes:
    return _head(status, len(body), keep_alive, content_type, extra) + body


def _dumps(value) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _error_body(message: str, type_: str, code: str | None) -> bytes:
    return _dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})


class HTTPError(Exception):
    """A request the server answers with an error status and then closes the connection."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Request:
    __slots__ = ("method", "path", "headers", "body", "keep_alive")

    def __init__(self, method: str, path: str, headers: dict, body: bytes, keep_alive: bool):
        self.method = method
        self.path = path
        self.headers = headers  # lower-case bytes name -> bytes value
        self.body = body
        self.keep_alive = keep_alive


async def read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_body: int) -> Request | None:
    """Reads one request; None at a clean end of the connection. Raises HTTPError if malformed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None  # EOF between requests (or mid-header: nothing sensible to answer)
    except asyncio.LimitOverrunError:
        raise HTTPError(431, "request header block too large")
    lines = head.lstrip(b"\r\n").split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise HTTPError(400, "malformed request line")
    method, target, version = parts
    headers = {}
    for line in lines[1:]:
        if line:
            name, sep, value = line.partition(b":")
            if not sep:
                raise HTTPError(400, "malformed header line")
            headers[name.strip().lower()] = value.strip()

    connection = headers.get(b"connection", b"").lower()
    if version == b"HTTP/1.1":
        keep_alive = b"close" not in connection
    else:
        keep_alive = b"keep-alive" in connection

    expect_continue = headers.get(b"expect", b"").lower() == b"100-continue"

    transfer_encoding = headers.get(b"transfer-encoding")
    if transfer_encoding is not None:
        if transfer_encoding.lower() != b"chunked":
            raise HTTPError(501, "unsupported transfer-encoding")
        if expect_continue:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await _read_chunked(reader, max_body)
    else:
        length_text = headers.get(b"content-length")
        try:
            length = int(length_text) if length_text is not None else 0
        except ValueError:
            raise HTTPError(400, "invalid content-length")
        if length < 0:
            raise HTTPError(400, "invalid content-length")
        if length > max_body:
            raise HTTPError(413, "request body of %d bytes exceeds the limit of %d" % (length, max_body))
        if length and expect_continue:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = await reader.readexactly(length) if length else b""

    path = target.split(b"?", 1)[0].decode("latin-1")
    return Request(method.decode("latin-1"), path, headers, body, keep_alive)


async def _read_chunked(reader: asyncio.StreamReader, max_body: int) -> bytes:
    chunks = []
    total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise HTTPError(400, "malformed chunk size")
        if size == 0:
            break
        total += size
        if total > max_body:
            raise HTTPError(413, "request body exceeds the limit of %d" % max_body)
        chunks.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise HTTPError(400, "malformed chunk")
    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailer fields, ignored
        pass
    return b"".join(chunks)


# --------------------------------------------------------------------------------------------
# Replies

TOOL_ARGUMENTS = {
    "run_command": '{"argv":["echo","hello"]}',
    "read_file": '{"path":"notes.txt"}',
    "write_file": '{"path":"notes.txt","content":"hello"}',
}
VERDICT_CONTENT = '{"verdict":"pass","score":0.9,"feedback":"ok"}'
STEPS_CONTENT = '{"steps":["step one","step two"]}'
VERIFIED_CONTENT = '{"verified":true,"reason":"ok"}'
EMPTY_CONTENT = "{}"
VERDICT_VIOLATION = '{"verdict":"maybe","score":"high"}'
OTHER_VIOLATION = '{"nope":1}'
PROSE_CONTENT = "I think it passes."

# Faults applied to a reply's content.
FAULT_NONE, FAULT_VIOLATE, FAULT_PROSE = 0, 1, 2


def _text_of(content) -> str:
    """A message content as text: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _schema_properties(payload: dict):
    """None when no JSON was requested, else the requested schema's properties (maybe empty)."""
    fmt = payload.get("response_format")
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind == "json_object":
        schema = fmt.get("schema")
    elif kind == "json_schema":
        wrapper = fmt.get("json_schema")
        schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
    else:
        return None
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return properties if isinstance(properties, dict) else {}


def _due_tool_call(payload: dict, messages: list) -> str | None:
    """The function name to call when the request forces a tool call that has not happened yet."""
    if not payload.get("tools"):
        return None
    choice = payload.get("tool_choice")
    if not isinstance(choice, dict):
        return None
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        return None
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "tool":
            return None
    return name


def reply_message(payload: dict, messages: list, fault: int = FAULT_NONE) -> tuple[dict, str, int]:
    """The assistant message, finish_reason and completion size (characters) for a request."""
    if fault != FAULT_PROSE:
        tool = _due_tool_call(payload, messages)
        if tool is not None:
            arguments = OTHER_VIOLATION if fault == FAULT_VIOLATE else TOOL_ARGUMENTS.get(tool, "{}")
            call = {"id": "call_1", "type": "function", "function": {"name": tool, "arguments": arguments}}
            return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls", len(arguments)

    if fault == FAULT_PROSE:
        content = PROSE_CONTENT
    else:
        properties = _schema_properties(payload)
        if fault == FAULT_VIOLATE:
            content = VERDICT_VIOLATION if properties and "verdict" in properties else OTHER_VIOLATION
        elif properties is None:
            last_user = ""
            for message in reversed(messages):
                if isinstance(message, dict) and message.get("role") == "user":
                    last_user = _text_of(message.get("content"))
                    break
            content = "done: " + last_user[:40]
        elif "verdict" in properties:
            content = VERDICT_CONTENT
        elif "steps" in properties:
            content = STEPS_CONTENT
        elif "verified" in properties:
            content = VERIFIED_CONTENT
        else:
            content = EMPTY_CONTENT
    return {"role": "assistant", "content": content}, "stop", len(content)


def prompt_tokens(messages: list) -> int:
    chars = 0
    for message in messages:
        if isinstance(message, dict):
            content = message.get("content")
            chars += len(content) if isinstance(content, str) else len(_text_of(content))
    return max(1, chars // 4)


# --------------------------------------------------------------------------------------------
# Server


class Stats:
    def __init__(self):
        self.open = 0  # survives /_reset: it is a gauge, not a counter
        self.held = 0  # likewise
        self.reset()

    def reset(self):
        self.requests = 0
        self.http_requests = 0
        self.unauthorized = 0
        self.bad_requests = 0
        self.models_requests = 0
        self.by_mode: dict[str, int] = {}
        self.by_model: dict[str, int] = {}
        self.arrivals: dict[str, list[float]] = {}
        self.arrivals_unix: dict[str, list[float]] = {}
        self.retry_after_dates: dict[str, list[int]] = {}
        self.last_body: dict[str, object] = {}
        self.idempotency_keys: dict[str, list[str | None]] = {}
        self.accepted = 0

    def snapshot(self) -> dict:
        return {
            "requests": self.requests,
            "http_requests": self.http_requests,
            "unauthorized": self.unauthorized,
            "bad_requests": self.bad_requests,
            "models_requests": self.models_requests,
            "by_mode": self.by_mode,
            "by_model": self.by_model,
            "arrivals": self.arrivals,
            "arrivals_unix": self.arrivals_unix,
            "retry_after_dates": self.retry_after_dates,
            "held": self.held,
            "last_body": self.last_body,
            "idempotency_keys": self.idempotency_keys,
            "connections": {"accepted": self.accepted, "open": self.open},
        }


class Call:
    """One authorized, well-formed chat request on its way through a mode."""

    __slots__ = ("req", "payload", "model", "messages", "nth", "reader", "writer")

    def __init__(self, req, payload, model, messages, nth, reader, writer):
        self.req = req
        self.payload = payload
        self.model = model
        self.messages = messages
        self.nth = nth  # 1-based count of requests for this full model string, this one included
        self.reader = reader
        self.writer = writer


_FAIL_N = re.compile(r"(429|500|503)x([0-9]+)")
_FAIL_MESSAGES = {
    429: ("Rate limit reached for requests. Please try again in 1s.", "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}


class FakeOpenAI:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.max_body = args.max_body
        self.expected_auth = b"Bearer " + args.expect_key.encode() if args.expect_key is not None else None
        self.stats = Stats()
        self.next_id = 0
        self.tasks: set[asyncio.Task] = set()
        self.oversized_chunk = b"x" * min(256 * 1024, max(1, args.oversized_bytes))
        self.placeholder = "@@oversized-%s@@" % os.urandom(8).hex()

        self.routes = {
            ("POST", "/v1/chat/completions"): self.chat,
            ("POST", "/chat/completions"): self.chat,
            ("GET", "/v1/models"): self.models,
            ("GET", "/models"): self.models,
            ("GET", "/_stats"): self.get_stats,
            ("POST", "/_reset"): self.post_reset,
            ("POST", "/_release"): self.post_release,
        }
        # Set by /_release: wakes every request `gate` holds, then is replaced by a fresh one.
        self.gate_open = asyncio.Event()
        self.paths = {path for _, path in self.routes}

        def fail(status, first):
            return lambda call: self.fail_first(call, status, first)

        self.modes = {
            "ok": self.mode_ok,
            "429": fail(429, 1),
            "429-always": fail(429, None),
            "500": fail(500, 1),
            "500-always": fail(500, None),
            "503": fail(503, 1),
            "503-always": fail(503, None),
            "400": self.mode_400,
            "404": self.mode_404,
            "hang": self.mode_hang,
            "drip": self.mode_drip,
            "truncated": self.mode_truncated,
            "badjson": self.mode_badjson,
            "schema-violation": self.mode_schema_violation,
            "schema-violation-once": self.mode_schema_violation_once,
            "notjson-content": self.mode_notjson_content,
            "wrong-content-type": self.mode_wrong_content_type,
            "oversized": self.mode_oversized,
            "reset": self.mode_reset,
            "empty-choices": self.mode_empty_choices,
            "delay": self.mode_delay,
            "gate": self.mode_gate,
            "429-date": lambda call: self.fail_with_date(call, 429),
            "503-date": lambda call: self.fail_with_date(call, 503),
        }
        models = sorted(self.modes) + ["429x3"]
        self.models_body = _dumps(
            {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in models]}
        )
        self.unauthorized_body = _error_body(
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )

    # -- connections -------------------------------------------------------------------------

    async def serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        task = asyncio.current_task()
        self.tasks.add(task)
        self.stats.accepted += 1
        self.stats.open += 1
        try:
            while True:
                try:
                    req = await read_request(reader, writer, self.max_body)
                except HTTPError as e:
                    writer.write(_response(e.status, _error_body(e.message, "invalid_request_error", None), False))
                    await _lingering_close(reader, writer)
                    break
                if req is None:
                    break
                if self.args.verbose:
                    print("%s %s %d bytes" % (req.method, req.path, len(req.body)), file=sys.stderr, flush=True)
                handler = self.routes.get((req.method, req.path))
                if handler is None:
                    keep = await self.no_route(req, writer)
                else:
                    keep = await handler(req, reader, writer)
                if not keep:
                    if not writer.is_closing():
                        await writer.drain()
                    break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # the client went away mid-request or mid-response
        except asyncio.CancelledError:
            pass  # server shutdown
        except Exception as e:  # a bug here must not take the server down
            print("fake_openai: connection error: %r" % (e,), file=sys.stderr, flush=True)
        finally:
            self.stats.open -= 1
            self.tasks.discard(task)
            writer.close()

    async def no_route(self, req: Request, writer) -> bool:
        self.stats.http_requests += 1
        if req.path in self.paths:
            status, message = 405, "method %s not allowed on %s" % (req.method, req.path)
        else:
            status, message = 404, "no route %s %s" % (req.method, req.path)
        writer.write(_response(status, _error_body(message, "invalid_request_error", None), req.keep_alive))
        return req.keep_alive

    def authorized(self, req: Request) -> bool:
        return self.expected_auth is None or req.headers.get(b"authorization") == self.expected_auth

    # -- endpoints ---------------------------------------------------------------------------

    async def models(self, req: Request, reader, writer) -> bool:
        self.stats.http_requests += 1
        self.stats.models_requests += 1
        if not self.authorized(req):
            self.stats.unauthorized += 1
            writer.write(_response(401, self.unauthorized_body, req.keep_alive))
        else:
            writer.write(_response(200, self.models_body, req.keep_alive))
        return req.keep_alive

    async def get_stats(self, req: Request, reader, writer) -> bool:
        writer.write(_response(200, _dumps(self.stats.snapshot()), req.keep_alive))
        return req.keep_alive

    async def post_release(self, req: Request, reader, writer) -> bool:
        released, self.gate_open = self.gate_open, asyncio.Event()
        released.set()
        writer.write(_response(200, b'{"ok":true}', req.keep_alive))
        return req.keep_alive

    async def post_reset(self, req: Request, reader, writer) -> bool:
        self.stats.reset()
        writer.write(_response(200, b'{"ok":true}', req.keep_alive))
        return req.keep_alive

    async def chat(self, req: Request, reader, writer) -> bool:
        stats = self.stats
        stats.http_requests += 1
        stats.requests += 1
        if self.expected_auth is not None and req.headers.get(b"authorization") != self.expected_auth:
            stats.unauthorized += 1
            writer.write(_response(401, self.unauthorized_body, req.keep_alive))
            return req.keep_alive
        try:
            payload = json.loads(req.body)
        except ValueError:
            payload = None
        model = payload.get("model") if isinstance(payload, dict) else None
        messages = payload.get("messages") if isinstance(payload, dict) else None
        if not isinstance(model, str) or not isinstance(messages, list):
            stats.bad_requests += 1
            message = "body must be a JSON object with a string 'model' and a 'messages' array"
            writer.write(_response(400, _error_body(message, "invalid_request_error", None), req.keep_alive))
            return req.keep_alive

        mode_name = model.partition(":")[0]
        handler = self.modes.get(mode_name)
        if handler is None:
            match = _FAIL_N.fullmatch(mode_name)
            if match:
                status, first = int(match[1]), int(match[2])
                handler = lambda call: self.fail_first(call, status, first)  # noqa: E731
            else:
                mode_name, handler = "ok", self.mode_ok
        by_mode, by_model = stats.by_mode, stats.by_model
        by_mode[mode_name] = by_mode.get(mode_name, 0) + 1
        nth = by_model[model] = by_model.get(model, 0) + 1
        times = stats.arrivals.setdefault(model, [])
        if len(times) < 1000:
            times.append(round(time.monotonic(), 4))
        unix_times = stats.arrivals_unix.setdefault(model, [])
        if len(unix_times) < 1000:
            unix_times.append(time.time())
        stats.last_body[mode_name] = payload
        keys = stats.idempotency_keys.setdefault(model, [])
        if len(keys) < 1000:
            key = req.headers.get(b"idempotency-key")
            keys.append(key.decode("utf-8", "replace") if key is not None else None)
        return await handler(Call(req, payload, model, messages, nth, reader, writer))

    # -- reply building ----------------------------------------------------------------------

    def completion(self, call: Call, fault: int = FAULT_NONE) -> bytes:
        message, finish, completion_chars = reply_message(call.payload, call.messages, fault)
        return _dumps(self.envelope(call, [{"index": 0, "message": message, "finish_reason": finish}], completion_chars))

    def envelope(self, call: Call, choices: list, completion_chars: int) -> dict:
        self.next_id += 1
        prompt = prompt_tokens(call.messages)
        completion = max(1, completion_chars // 4)
        return {
            "id": "chatcmpl-%d" % self.next_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model,
            "choices": choices,
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }

    def ok(self, call: Call, fault: int = FAULT_NONE) -> bool:
        keep = call.req.keep_alive
        call.writer.write(_response(200, self.completion(call, fault), keep))
        return keep

    def error(self, call: Call, status: int, body: bytes, extra: bytes = b"") -> bool:
        keep = call.req.keep_alive
        call.writer.write(_response(status, body, keep, extra=extra))
        return keep

    # -- modes -------------------------------------------------------------------------------
    # Each takes a Call, writes its answer (or not) and returns whether the connection stays open.

    async def mode_ok(self, call: Call) -> bool:
        return self.ok(call)

    async def fail_first(self, call: Call, status: int, first: int | None) -> bool:
        """`status` for the first `first` requests per model string (always when None), then ok."""
        if first is not None and call.nth > first:
            return self.ok(call)
        message, type_, code = _FAIL_MESSAGES[status]
        return self.error(call, status, _error_body(message, type_, code), _RETRY_AFTER if status != 500 else b"")

    async def fail_with_date(self, call: Call, status: int) -> bool:
        """`status` with `Retry-After` as an HTTP date for the first request per model string, then ok."""
        if call.nth > 1:
            return self.ok(call)
        date = int(time.time()) + 1 + self.args.retry_after_date_seconds
        self.stats.retry_after_dates.setdefault(call.model, []).append(date)
        header = b"Retry-After: %s\r\n" % email.utils.formatdate(date, usegmt=True).encode()
        message, type_, code = _FAIL_MESSAGES[status]
        return self.error(call, status, _error_body(message, type_, code), header)

    async def mode_gate(self, call: Call) -> bool:
        self.stats.held += 1
        gone = asyncio.ensure_future(_drain_until_eof(call.reader))
        opened = asyncio.ensure_future(self.gate_open.wait())
        try:
            await asyncio.wait({gone, opened}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.stats.held -= 1
            gone.cancel()
            opened.cancel()
            # The reader must be free again before the connection's next request is read.
            await asyncio.gather(gone, opened, return_exceptions=True)
        if opened.cancelled() or call.writer.is_closing():
            return False
        return self.ok(call)

    async def mode_400(self, call: Call) -> bool:
        body = _error_body("Invalid request (fake 400).", "invalid_request_error", None)
        return self.error(call, 400, body)

    async def mode_404(self, call: Call) -> bool:
        message = "The model `%s` does not exist or you do not have access to it." % call.model
        return self.error(call, 404, _error_body(message, "invalid_request_error", "model_not_found"))

    async def mode_hang(self, call: Call) -> bool:
        await _drain_until_eof(call.reader)
        return False

    async def mode_drip(self, call: Call) -> bool:
        body = self.completion(call)
        writer = call.writer
        writer.write(_head(200, len(body), False))
        await writer.drain()
        gone = asyncio.ensure_future(_drain_until_eof(call.reader))
        try:
            for i in range(len(body)):
                done, _ = await asyncio.wait({gone}, timeout=self.args.drip_interval)
                if done or writer.is_closing():
                    break
                writer.write(body[i : i + 1])
                await writer.drain()
        finally:
            gone.cancel()
        return False

    async def mode_truncated(self, call: Call) -> bool:
        body = self.completion(call)
        call.writer.write(_head(200, len(body), False) + body[: len(body) // 2])
        return False

    async def mode_badjson(self, call: Call) -> bool:
        call.writer.write(_response(200, b'{"choices": [', call.req.keep_alive))
        return call.req.keep_alive

    async def mode_schema_violation(self, call: Call) -> bool:
        return self.ok(call, FAULT_VIOLATE)

    async def mode_schema_violation_once(self, call: Call) -> bool:
        return self.ok(call, FAULT_VIOLATE if call.nth == 1 else FAULT_NONE)

    async def mode_notjson_content(self, call: Call) -> bool:
        return self.ok(call, FAULT_PROSE)

    async def mode_wrong_content_type(self, call: Call) -> bool:
        call.writer.write(_response(200, b"<html>oops</html>", call.req.keep_alive, content_type=b"text/html"))
        return call.req.keep_alive

    async def mode_oversized(self, call: Call) -> bool:
        size = self.args.oversized_bytes
        placeholder = self.placeholder
        message = {"role": "assistant", "content": placeholder}
        envelope = _dumps(self.envelope(call, [{"index": 0, "message": message, "finish_reason": "stop"}], size))
        prefix, _, suffix = envelope.partition(b'"content":"%s"' % placeholder.encode())
        prefix += b'"content":"'
        suffix = b'"' + suffix
        writer = call.writer
        keep = call.req.keep_alive
        writer.write(_head(200, len(prefix) + size + len(suffix), keep) + prefix)
        chunk = self.oversized_chunk
        remaining = size
        while remaining > 0:
            if writer.is_closing():
                return False
            n = min(remaining, len(chunk))
            writer.write(chunk if n == len(chunk) else chunk[:n])
            remaining -= n
            await writer.drain()
        writer.write(suffix)
        return keep

    async def mode_reset(self, call: Call) -> bool:
        sock = call.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        call.writer.transport.abort()
        return False

    async def mode_empty_choices(self, call: Call) -> bool:
        keep = call.req.keep_alive
        call.writer.write(_response(200, _dumps(self.envelope(call, [], 0)), keep))
        return keep

    async def mode_delay(self, call: Call) -> bool:
        await asyncio.sleep(self.args.delay_seconds)
        if call.writer.is_closing():
            return False
        return self.ok(call)

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self) -> None:
        tls = None
        if self.args.tls_cert:
            import ssl

            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(self.args.tls_cert, self.args.tls_key)
        server = await asyncio.start_server(
            self.serve_connection, self.args.host, self.args.port, limit=_HEADER_LIMIT, backlog=1024, reuse_address=True,
            ssl=tls,
        )
        port = server.sockets[0].getsockname()[1]
        print("listening %d" % port, flush=True)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

        server.close()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(server.wait_closed(), timeout=2)
        except asyncio.TimeoutError:
            pass


async def _drain_until_eof(reader: asyncio.StreamReader) -> None:
    """Reads and discards until the peer closes (or resets) the connection."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass


async def _lingering_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Half-closes and discards what the client still sends (e.g. the body of a 413) for up to 2 s.

    Closing with unread input makes the kernel send RST, which can destroy the error response
    before the client has read it.
    """
    await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
    try:
        await asyncio.wait_for(_drain_until_eof(reader), timeout=2)
    except asyncio.TimeoutError:
        pass


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fake, fault-injecting OpenAI chat-completions server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--expect-key", default=None, help="require 'Authorization: Bearer KEY'")
    parser.add_argument("--max-body", type=int, default=16 * 1024 * 1024, help="request body limit in bytes")
    parser.add_argument("--oversized-bytes", type=int, default=64 * 1024 * 1024, help="content size in mode oversized")
    parser.add_argument("--delay-seconds", type=float, default=2.0, help="wait of mode delay")
    parser.add_argument("--drip-interval", type=float, default=0.5, help="seconds per body byte in mode drip")
    parser.add_argument(
        "--retry-after-date-seconds", type=int, default=2, help="how far ahead the HTTP-date Retry-After of 429-date/503-date is"
    )
    parser.add_argument("--verbose", action="store_true", help="log each request to stderr")
    parser.add_argument("--tls-cert", default=None, help="serve HTTPS with this PEM certificate (with --tls-key)")
    parser.add_argument("--tls-key", default=None, help="the certificate's PEM private key")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    asyncio.run(FakeOpenAI(args).run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
