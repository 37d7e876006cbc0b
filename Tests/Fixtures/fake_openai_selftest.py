#!/usr/bin/env python3
"""Self-test of fake_openai.py: starts it and checks every endpoint and mode from the outside.

    python3 Tests/Fixtures/fake_openai_selftest.py

Uses http.client where a well-behaved exchange is expected and raw sockets where the server is
meant to misbehave (hang, drip, truncated, reset, pipelining, chunked bodies). Takes ~8 s
(`delay` waits 2 s, `oversized` sends 64 MiB). Prints one line per check group; exits non-zero at
the first failure.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "fake_openai.py")
KEY = "sk-selftest"

VERDICT_SCHEMA = {
    "type": "object",
    "required": ["verdict", "score", "feedback"],
    "properties": {"verdict": {"type": "string"}, "score": {"type": "number"}, "feedback": {"type": "string"}},
}
STEPS_SCHEMA = {"type": "object", "properties": {"steps": {"type": "array", "items": {"type": "string"}}}}
VERIFIED_SCHEMA = {"type": "object", "properties": {"verified": {"type": "boolean"}, "reason": {"type": "string"}}}
OTHER_SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}}
TOOLS = [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}} for n in
         ("run_command", "read_file", "write_file", "other_tool")]


def start(*args: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([sys.executable, SERVER, *args], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("listening "), "startup line: %r" % line
    port = int(line.split()[1])
    assert port > 0 and line == "listening %d\n" % port
    return proc, port


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout=5)


class Client:
    """A keep-alive http.client connection with JSON helpers."""

    def __init__(self, port: int, key: str | None = KEY):
        self.port = port
        self.key = key
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def request(self, method: str, path: str, body=None, headers=None):
        h = dict(headers or {})
        if self.key is not None:
            h.setdefault("Authorization", "Bearer " + self.key)
        data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        self.conn.request(method, path, body=data, headers=h)
        response = self.conn.getresponse()
        return response.status, response, response.read()

    def chat(self, model: str, messages=None, path="/v1/chat/completions", **extra):
        payload = {"model": model, "messages": messages or [{"role": "user", "content": "hello"}], **extra}
        return self.request("POST", path, payload)

    def stats(self) -> dict:
        status, _, body = self.request("GET", "/_stats")
        assert status == 200
        return json.loads(body)

    def reset(self):
        status, _, body = self.request("POST", "/_reset")
        assert status == 200 and json.loads(body) == {"ok": True}

    def close(self):
        self.conn.close()


def content_of(body: bytes):
    reply = json.loads(body)
    return reply["choices"][0]["message"]["content"]


def json_format(schema, style="json_schema"):
    if style == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}}
    return {"type": "json_object", "schema": schema}


def raw_request(model: str, key: str | None = KEY, extra_headers: str = "", payload=None) -> bytes:
    body = json.dumps(payload or {"model": model, "messages": [{"role": "user", "content": "hi"}]}).encode()
    auth = "Authorization: Bearer %s\r\n" % key if key else ""
    head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n%s%sContent-Length: %d\r\n\r\n" % (
        auth, extra_headers, len(body))
    return head.encode() + body


def raw_socket(port: int, timeout: float = 5) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[bytes, dict, bytes]:
    """Reads one Content-Length response off `sock` (leftover bytes stay in `buffer`)."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        assert data, "EOF before the end of the headers"
        buffer += data
    end = buffer.index(b"\r\n\r\n")
    lines = bytes(buffer[:end]).split(b"\r\n")
    headers = {k.strip().lower().decode(): v.strip().decode() for k, _, v in (l.partition(b":") for l in lines[1:])}
    length = int(headers["content-length"])
    while len(buffer) < end + 4 + length:
        data = sock.recv(65536)
        assert data, "EOF before the end of the body"
        buffer += data
    body = bytes(buffer[end + 4 : end + 4 + length])
    del buffer[: end + 4 + length]
    return lines[0], headers, body


def recv_until_eof(sock: socket.socket) -> bytes:
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def check(name: str):
    print("ok   %s" % name, flush=True)


# --------------------------------------------------------------------------------------------


def test_ok_replies(c: Client):
    long_text = "Please write the notes file now, with the summary of the previous three steps."
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": long_text}]
    status, response, body = c.chat("ok", messages)
    assert status == 200 and response.getheader("Content-Type") == "application/json"
    assert response.getheader("Content-Length") == str(len(body))
    reply = json.loads(body)
    assert reply["id"].startswith("chatcmpl-") and reply["object"] == "chat.completion"
    assert isinstance(reply["created"], int) and reply["model"] == "ok"
    assert reply["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "done: " + long_text[:40]},
                                 "finish_reason": "stop"}]
    p = (3 + len(long_text)) // 4
    cc = len("done: " + long_text[:40]) // 4
    assert reply["usage"] == {"prompt_tokens": p, "completion_tokens": cc, "total_tokens": p + cc}, reply["usage"]
    # Content-part lists count as text; the prompt-token floor is 1.
    parts = [{"role": "user", "content": [{"type": "text", "text": "ab"}, {"type": "text", "text": "cd"}]}]
    reply = json.loads(c.chat("ok:parts", parts)[2])
    assert reply["choices"][0]["message"]["content"] == "done: abcd" and reply["usage"]["prompt_tokens"] == 1
    # The last user message counts, not the last message.
    msgs = [{"role": "user", "content": "first"}, {"role": "user", "content": "second"},
            {"role": "assistant", "content": "x"}]
    assert content_of(c.chat("ok", msgs)[2]) == "done: second"
    # The path without /v1 and an unknown model name.
    status, _, body = c.chat("gpt-4o-mini", path="/chat/completions")
    assert status == 200 and content_of(body) == "done: hello" and json.loads(body)["model"] == "gpt-4o-mini"
    check("ok: plain text reply, envelope, usage, /chat/completions, unknown model")

    for style in ("json_schema", "json_object"):
        for schema, expected in ((VERDICT_SCHEMA, {"verdict": "pass", "score": 0.9, "feedback": "ok"}),
                                 (STEPS_SCHEMA, {"steps": ["step one", "step two"]}),
                                 (VERIFIED_SCHEMA, {"verified": True, "reason": "ok"}),
                                 (OTHER_SCHEMA, {})):
            status, _, body = c.chat("ok", response_format=json_format(schema, style))
            assert status == 200 and json.loads(content_of(body)) == expected, (style, body)
    assert content_of(c.chat("ok", response_format={"type": "json_object"})[2]) == "{}"
    assert content_of(c.chat("ok", response_format={"type": "text"})[2]) == "done: hello"
    check("ok: JSON replies by schema (json_schema and json_object)")

    expected_args = {"run_command": {"argv": ["echo", "hello"]}, "read_file": {"path": "notes.txt"},
                     "write_file": {"path": "notes.txt", "content": "hello"}, "other_tool": {}}
    for name, args in expected_args.items():
        choice = {"type": "function", "function": {"name": name}}
        status, _, body = c.chat("ok", tools=TOOLS, tool_choice=choice)
        reply = json.loads(body)
        first = reply["choices"][0]
        assert status == 200 and first["finish_reason"] == "tool_calls", body
        assert first["message"]["role"] == "assistant" and first["message"]["content"] is None
        (call,) = first["message"]["tool_calls"]
        assert call["type"] == "function" and call["function"]["name"] == name and call["id"]
        assert isinstance(call["function"]["arguments"], str) and json.loads(call["function"]["arguments"]) == args
    after_tool = [{"role": "user", "content": "run it"},
                  {"role": "assistant", "content": None, "tool_calls": [
                      {"id": "call_1", "type": "function",
                       "function": {"name": "run_command", "arguments": "{}"}}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "hello\n"}]
    choice = {"type": "function", "function": {"name": "run_command"}}
    reply = json.loads(c.chat("ok", after_tool, tools=TOOLS, tool_choice=choice)[2])
    assert reply["choices"][0]["finish_reason"] == "stop"
    assert reply["choices"][0]["message"]["content"] == "done: run it"
    reply = json.loads(c.chat("ok", after_tool, tools=TOOLS, tool_choice=choice,
                              response_format=json_format(VERIFIED_SCHEMA))[2])
    assert json.loads(reply["choices"][0]["message"]["content"]) == {"verified": True, "reason": "ok"}
    assert content_of(c.chat("ok", tools=TOOLS, tool_choice="auto")[2]) == "done: hello"
    check("ok: forced tool calls, answered normally once a tool message exists")


def test_auth_and_endpoints(port: int, c: Client):
    c.reset()
    for key in (None, "wrong"):
        anon = Client(port, key=key)
        status, response, body = anon.chat("ok")
        error = json.loads(body)["error"]
        assert status == 401 and error["type"] == "invalid_request_error" and error["code"] == "invalid_api_key"
        assert error["message"]
        # keep-alive survives a 401
        status, _, _ = anon.request("GET", "/_stats")
        assert status == 200
        anon.close()
    stats = c.stats()
    assert stats["unauthorized"] == 2 and stats["requests"] == 2 and stats["by_mode"] == {}, stats
    check("auth: missing and wrong key get 401 invalid_api_key, counted, not per mode")

    status, _, body = c.request("GET", "/v1/models")
    models = json.loads(body)
    assert status == 200 and models["object"] == "list" and {"ok", "429", "hang"} <= {m["id"] for m in models["data"]}
    assert c.request("GET", "/models")[0] == 200
    status, _, body = c.request("GET", "/v2/nothing")
    assert status == 404 and "error" in json.loads(body)
    assert c.request("GET", "/v1/chat/completions")[0] == 405
    status, _, body = c.request("POST", "/v1/chat/completions", b"{not json")
    assert status == 400 and json.loads(body)["error"]["type"] == "invalid_request_error"
    assert c.request("POST", "/v1/chat/completions", {"messages": []})[0] == 400
    stats = c.stats()
    assert stats["bad_requests"] == 2 and stats["models_requests"] == 2
    assert stats["http_requests"] == 2 + 2 + 2 + 2, stats  # 401s, models, 404 + 405, bad bodies
    c.reset()
    stats = c.stats()
    assert stats["requests"] == 0 and stats["by_model"] == {} and stats["unauthorized"] == 0
    check("endpoints: /v1/models, 404, 405, malformed body 400, /_stats, /_reset")


def test_status_modes(c: Client):
    c.reset()

    def expect_error(model, status, retry_after, code=None):
        got, response, body = c.chat(model)
        assert got == status, (model, got, body)
        assert response.getheader("Retry-After") == retry_after, (model, response.getheader("Retry-After"))
        error = json.loads(body)["error"]
        assert error["message"] and error["type"] and "param" in error and error["code"] == code, error

    def expect_ok(model):
        status, _, body = c.chat(model)
        assert status == 200 and content_of(body) == "done: hello", (model, status, body)

    expect_error("429", 429, "1", "rate_limit_exceeded")
    expect_ok("429")
    expect_ok("429")
    expect_error("429:job-a", 429, "1", "rate_limit_exceeded")  # its own history
    expect_ok("429:job-a")
    for _ in range(3):
        expect_error("429x3:a", 429, "1", "rate_limit_exceeded")
    expect_ok("429x3:a")
    for _ in range(2):
        expect_error("500x2", 500, None)
    expect_ok("500x2")
    for _ in range(3):
        expect_error("429-always:a", 429, "1", "rate_limit_exceeded")
    expect_error("500", 500, None)
    expect_ok("500")
    expect_error("503", 503, "1")
    expect_ok("503")
    for _ in range(2):
        expect_error("500-always", 500, None)
        expect_error("503-always", 503, "1")
        expect_error("400:x", 400, None)
        expect_error("404:x", 404, None, "model_not_found")
    stats = c.stats()
    assert stats["by_model"] == {
        "429": 3, "429:job-a": 2, "429x3:a": 4, "500x2": 3, "429-always:a": 3, "500": 2, "503": 2,
        "500-always": 2, "503-always": 2, "400:x": 2, "404:x": 2}, stats["by_model"]
    assert stats["by_mode"] == {
        "429": 5, "429x3": 4, "500x2": 3, "429-always": 3, "500": 2, "503": 2, "500-always": 2,
        "503-always": 2, "400": 2, "404": 2}, stats["by_mode"]
    assert stats["last_body"]["404"]["model"] == "404:x"
    c.reset()
    expect_error("429", 429, "1", "rate_limit_exceeded")  # history forgotten by /_reset
    check("status modes: 429 / 429x3 / 429-always / 500 / 503 / -always / 400 / 404, counters, reset")


def test_content_modes(c: Client):
    status, response, body = c.chat("badjson")
    assert status == 200 and response.getheader("Content-Type") == "application/json" and body == b'{"choices": ['
    status, response, body = c.chat("wrong-content-type")
    assert status == 200 and response.getheader("Content-Type") == "text/html" and body == b"<html>oops</html>"
    reply = json.loads(c.chat("empty-choices")[2])
    assert reply["choices"] == [] and reply["object"] == "chat.completion" and "usage" in reply
    check("badjson, wrong-content-type, empty-choices")

    verdict = json_format(VERDICT_SCHEMA)
    assert json.loads(content_of(c.chat("schema-violation", response_format=verdict)[2])) == \
        {"verdict": "maybe", "score": "high"}
    assert json.loads(content_of(c.chat("schema-violation", response_format=json_format(STEPS_SCHEMA))[2])) == \
        {"nope": 1}
    assert json.loads(content_of(c.chat("schema-violation")[2])) == {"nope": 1}
    choice = {"type": "function", "function": {"name": "run_command"}}
    reply = json.loads(c.chat("schema-violation", tools=TOOLS, tool_choice=choice)[2])
    assert json.loads(reply["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == {"nope": 1}
    for key in ("a", "b"):
        model = "schema-violation-once:" + key
        assert json.loads(content_of(c.chat(model, response_format=verdict)[2]))["verdict"] == "maybe"
        assert json.loads(content_of(c.chat(model, response_format=verdict)[2])) == \
            {"verdict": "pass", "score": 0.9, "feedback": "ok"}
    check("schema-violation, schema-violation-once")

    assert content_of(c.chat("notjson-content", response_format=verdict)[2]) == "I think it passes."
    reply = json.loads(c.chat("notjson-content", tools=TOOLS, tool_choice=choice)[2])
    assert reply["choices"][0]["message"] == {"role": "assistant", "content": "I think it passes."}
    assert reply["choices"][0]["finish_reason"] == "stop"
    check("notjson-content")

    started = time.monotonic()
    status, _, body = c.chat("delay:1", response_format=verdict)
    elapsed = time.monotonic() - started
    assert status == 200 and json.loads(content_of(body))["verdict"] == "pass" and 1.9 <= elapsed < 4, elapsed
    check("delay: answered after %.2f s" % elapsed)


def test_oversized(port: int, c: Client):
    sock_before = c.conn.sock
    started = time.monotonic()
    status, response, body = c.chat("oversized:1")
    elapsed = time.monotonic() - started
    assert status == 200 and int(response.getheader("Content-Length")) == len(body)
    reply = json.loads(body)
    content = reply["choices"][0]["message"]["content"]
    assert len(content) == 64 * 1024 * 1024 and content.strip("x") == "", len(content)
    assert reply["usage"]["completion_tokens"] == 16 * 1024 * 1024
    del body, reply, content
    assert c.chat("ok")[0] == 200 and c.conn.sock is sock_before  # the connection was kept alive
    check("oversized: 64 MiB content, valid JSON, connection reusable (%.2f s)" % elapsed)


def test_misbehaving_modes(port: int, c: Client):
    # hang: no answer, the connection stays open; the server notices when the client leaves.
    sock = raw_socket(port, timeout=1.0)
    sock.sendall(raw_request("hang:1"))
    try:
        data = sock.recv(1)
        raise AssertionError("hang answered %r" % data)
    except socket.timeout:
        pass
    open_during = c.stats()["connections"]["open"]
    sock.close()
    deadline = time.monotonic() + 2
    while c.stats()["connections"]["open"] >= open_during and time.monotonic() < deadline:
        time.sleep(0.05)
    assert c.stats()["connections"]["open"] < open_during
    check("hang: no bytes within 1 s, connection open until the client closes it")

    # drip: headers at once, then one body byte per 0.5 s.
    sock = raw_socket(port, timeout=2.0)
    started = time.monotonic()
    sock.sendall(raw_request("drip"))
    buffer = bytearray()
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(4096)
    headers_at = time.monotonic() - started
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: " in head and headers_at < 0.4, headers_at
    received = len(rest)
    sock.settimeout(0.2)
    while time.monotonic() - started < 1.8:
        try:
            data = sock.recv(4096)
            assert data
            received += len(data)
        except socket.timeout:
            pass
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    assert 2 <= received <= 4 and length > 100, (received, length)
    sock.close()
    check("drip: headers after %.2f s, %d body bytes in 1.8 s of %d" % (headers_at, received, length))

    # truncated: half the declared body, then EOF.
    sock = raw_socket(port)
    sock.sendall(raw_request("truncated"))
    data = recv_until_eof(sock)
    sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
    assert head.startswith(b"HTTP/1.1 200 ") and len(body) == length // 2 and length > 100, (len(body), length)
    client = Client(port)
    try:
        client.chat("truncated:http.client")
        raise AssertionError("truncated body was read whole")
    except http.client.IncompleteRead as e:
        assert len(e.partial) > 0
    client.close()
    check("truncated: %d of %d declared bytes, then EOF (IncompleteRead)" % (len(body), length))

    # reset: RST, no bytes.
    sock = raw_socket(port)
    sock.sendall(raw_request("reset"))
    try:
        data = sock.recv(4096)
        raise AssertionError("reset answered %r" % data)
    except ConnectionResetError:
        pass
    sock.close()
    check("reset: ECONNRESET without a byte")


def test_gate_and_date_modes(port: int, c: Client):
    # gate: held until /_release, then answered on the same (kept-alive) connection.
    sock = raw_socket(port)
    sock.sendall(raw_request("gate:1"))
    deadline = time.monotonic() + 5
    while c.stats()["held"] != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert c.stats()["held"] == 1
    assert c.request("POST", "/_release")[0] == 200
    buffer = bytearray()
    head, _, body = read_response(sock, buffer)
    assert head.startswith(b"HTTP/1.1 200 ") and json.loads(body)["choices"], head
    sock.sendall(raw_request("ok:after-gate"))
    assert read_response(sock, buffer)[0].startswith(b"HTTP/1.1 200 ")
    sock.close()
    assert c.stats()["held"] == 0
    check("gate: held until POST /_release, then answered; the connection stays usable")

    # 429-date / 503-date: Retry-After as an HTTP date ahead of now, recorded; then ok.
    for mode, status in (("429-date", 429), ("503-date", 503)):
        got, response, _ = c.chat(mode + ":d")
        date = response.getheader("Retry-After")
        assert got == status and date.endswith(" GMT"), (got, date)
        sent = c.stats()["retry_after_dates"][mode + ":d"]
        assert sent == [int(email.utils.parsedate_to_datetime(date).timestamp())], (sent, date)
        assert sent[0] > time.time(), (sent, date)
        assert c.chat(mode + ":d")[0] == 200
        assert len(c.stats()["arrivals_unix"][mode + ":d"]) == 2
    check("429-date / 503-date: an HTTP-date Retry-After ahead of now, recorded in retry_after_dates")


def test_http_plumbing(port: int, c: Client):
    # Keep-alive on one http.client connection.
    sock_before = c.conn.sock
    for _ in range(20):
        assert c.chat("ok")[0] == 200
    assert c.conn.sock is sock_before

    # Pipelining: three requests in one write, three responses in order.
    sock = raw_socket(port)
    sock.sendall(raw_request("ok:p1") + raw_request("429:pipe") + raw_request("ok:p3"))
    buffer = bytearray()
    statuses = [read_response(sock, buffer)[0].split(b" ")[1] for _ in range(3)]
    assert statuses == [b"200", b"429", b"200"], statuses

    # Connection: close is honoured.
    sock.sendall(raw_request("ok", extra_headers="Connection: close\r\n"))
    _, headers, _ = read_response(sock, buffer)
    assert headers["connection"] == "close" and recv_until_eof(sock) == b""
    sock.close()

    # HTTP/1.0 without keep-alive closes; with keep-alive stays.
    sock = raw_socket(port)
    sock.sendall(raw_request("ok").replace(b"HTTP/1.1", b"HTTP/1.0", 1))
    buffer = bytearray()
    _, headers, _ = read_response(sock, buffer)
    assert headers["connection"] == "close" and recv_until_eof(sock) == b""
    sock.close()

    # Chunked request body and Expect: 100-continue.
    body = json.dumps({"model": "ok:chunked", "messages": [{"role": "user", "content": "in chunks"}]}).encode()
    chunked = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + 7]), body[i:i + 7]) for i in range(0, len(body), 7))
    sock = raw_socket(port)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n%s0\r\nTrailer: 1\r\n\r\n" % (KEY.encode(), chunked))
    buffer = bytearray()
    status, _, reply = read_response(sock, buffer)
    assert status.startswith(b"HTTP/1.1 200") and content_of(reply) == "done: in chunks", reply
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                 b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % (KEY.encode(), len(body)))
    while b"\r\n\r\n" not in buffer:
        buffer += sock.recv(4096)
    assert bytes(buffer).startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), bytes(buffer)
    del buffer[: len(b"HTTP/1.1 100 Continue\r\n\r\n")]
    sock.sendall(body)
    status, _, reply = read_response(sock, buffer)
    assert status.startswith(b"HTTP/1.1 200") and content_of(reply) == "done: in chunks"
    sock.close()

    # Malformed request line: 400 and close.
    sock = raw_socket(port)
    sock.sendall(b"NONSENSE\r\n\r\n")
    data = recv_until_eof(sock)
    assert data.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in data
    sock.close()
    check("HTTP: keep-alive, pipelining, Connection: close, HTTP/1.0, chunked body, 100-continue, 400")


def test_second_server():
    """No --expect-key, a small --max-body and --oversized-bytes; SIGINT with a hung client."""
    proc, port = start("--max-body", "2000", "--oversized-bytes", "100000", "--drip-interval", "0.005")
    try:
        c = Client(port, key=None)
        assert c.chat("ok")[0] == 200  # no key needed
        status, _, body = c.request("POST", "/v1/chat/completions", b"x" * 2001)
        assert status == 413 and "error" in json.loads(body)
        c.close()
        c = Client(port, key=None)  # a large rejected body must not turn the 413 into a reset
        status, _, body = c.request("POST", "/v1/chat/completions", b"x" * 5_000_000)
        assert status == 413 and "error" in json.loads(body)
        c.close()
        c = Client(port, key=None)
        content = content_of(c.chat("oversized")[2])
        assert len(content) == 100000
        assert c.chat("ok")[0] == 200
        sock = raw_socket(port)
        sock.sendall(raw_request("drip", key=None))
        data = recv_until_eof(sock)
        head, _, body = data.partition(b"\r\n\r\n")
        assert b"Connection: close" in head and json.loads(body)["choices"][0]["message"]["content"] == "done: hi"
        sock.close()
        # A hung connection must not keep the server from stopping.
        hung = raw_socket(port)
        hung.sendall(raw_request("hang", key=None))
        time.sleep(0.2)
        started = time.monotonic()
        code = stop(proc, signal.SIGINT)
        assert code == 0 and time.monotonic() - started < 3, code
        hung.close()
        c.close()
    finally:
        if proc.poll() is None:
            proc.kill()
    check("second server: no key, 413 over --max-body, --oversized-bytes, whole drip, SIGINT with a hung client")


def main() -> int:
    proc, port = start("--expect-key", KEY)
    try:
        c = Client(port)
        test_ok_replies(c)
        test_auth_and_endpoints(port, c)
        test_status_modes(c)
        test_content_modes(c)
        test_oversized(port, c)
        test_misbehaving_modes(port, c)
        test_gate_and_date_modes(port, c)
        test_http_plumbing(port, c)
        stats = c.stats()
        assert stats["by_mode"]["hang"] == 1 and stats["by_mode"]["reset"] == 1
        assert stats["last_body"]["drip"]["model"] == "drip"
        c.close()
        hung = raw_socket(port)
        hung.sendall(raw_request("hang:final"))
        time.sleep(0.2)
        started = time.monotonic()
        code = stop(proc)
        assert code == 0 and time.monotonic() - started < 3, code
        hung.close()
        check("SIGTERM with a hung client: exit 0")
    finally:
        if proc.poll() is None:
            proc.kill()
    test_second_server()
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
