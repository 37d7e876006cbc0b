#!/usr/bin/env python3
"""Load check for fake_openai.py: requests/s of mode `ok` over keep-alive connections.

    python3 Tests/Fixtures/fake_openai_load.py [--connections 64] [--seconds 3] [--model ok]
        [--json] [--processes 1] [--port PORT]

Without --port it starts Tests/Fixtures/fake_openai.py itself (and stops it afterwards) and also
reports the server's CPU use over the run, read from /proc. Each connection sends one request,
waits for the whole response (by Content-Length), checks it is a 200, and sends the next. When
the machine is shared, "requests per server CPU-second" is the steadier figure of the two. The
client is a bare asyncio.Protocol so that it stays cheaper than the server, and --processes N
splits the connections over N client processes when one client process cannot keep the server
busy. --json asks for a verdict schema instead of plain text. Prints one summary line; exits 1 if
any response was not 200.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class LoadConnection(asyncio.Protocol):
    """Sends `request`, reads one response, repeats until `deadline`."""

    def __init__(self, request: bytes, deadline: float, done: asyncio.Future):
        self.request = request
        self.deadline = deadline
        self.done = done
        self.buffer = bytearray()
        self.count = 0
        self.failures = 0
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data):
        buffer = self.buffer
        buffer += data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            start = buffer.find(b"Content-Length: ", 0, end)
            stop = buffer.find(b"\r\n", start)
            length = int(buffer[start + 16 : stop])
            total = end + 4 + length
            if len(buffer) < total:
                return
            if not buffer.startswith(b"HTTP/1.1 200 "):
                self.failures += 1
            del buffer[:total]
            self.count += 1
            if time.monotonic() >= self.deadline:
                self.transport.close()
                return
            self.transport.write(self.request)

    def connection_lost(self, exc):
        if not self.done.done():
            self.done.set_result(None)


async def run_load(host: str, port: int, connections: int, seconds: float, body: bytes) -> tuple[int, int, float]:
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer test\r\nContent-Length: %d\r\n\r\n%s" % (host.encode(), port, len(body), body)
    )
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    deadline = start + seconds
    protocols = []
    waits = []
    for _ in range(connections):
        done = loop.create_future()
        _, protocol = await loop.create_connection(lambda: LoadConnection(request, deadline, done), host, port)
        protocols.append(protocol)
        waits.append(done)
    await asyncio.gather(*waits)
    elapsed = time.monotonic() - start
    return sum(p.count for p in protocols), sum(p.failures for p in protocols), elapsed


def _load_process(host, port, connections, seconds, body, results):
    cpu = time.process_time()
    count, failures, elapsed = asyncio.run(run_load(host, port, connections, seconds, body))
    results.put((count, failures, elapsed, time.process_time() - cpu))


def load(host: str, port: int, connections: int, seconds: float, body: bytes, processes: int):
    """(requests, failures, elapsed s, client CPU s) summed over `processes` client processes."""
    if processes <= 1:
        cpu = time.process_time()
        count, failures, elapsed = asyncio.run(run_load(host, port, connections, seconds, body))
        return count, failures, elapsed, time.process_time() - cpu
    results = multiprocessing.Queue()
    shares = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    workers = [
        multiprocessing.Process(target=_load_process, args=(host, port, share, seconds, body, results)) for share in shares
    ]
    for worker in workers:
        worker.start()
    parts = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return (sum(p[0] for p in parts), sum(p[1] for p in parts), max(p[2] for p in parts), sum(p[3] for p in parts))


def cpu_seconds(pid: int) -> float:
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--model", default="ok")
    parser.add_argument("--json", action="store_true", help="request a verdict schema")
    parser.add_argument("--processes", type=int, default=1, help="client processes sharing the connections")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None, help="use a running server instead of starting one")
    args = parser.parse_args()

    payload = {
        "model": args.model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": "You are the actor of an agentd job."},
            {"role": "user", "content": "Step 1 of 3: write the notes file and report what you did."},
        ],
    }
    if args.json:
        schema = {"type": "object", "required": ["verdict"], "properties": {"verdict": {"type": "string"}}}
        payload["response_format"] = {"type": "json_schema", "json_schema": {"name": "verdict", "schema": schema}}
    body = json.dumps(payload).encode()

    server = None
    port = args.port
    if port is None:
        server = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "fake_openai.py"), "--host", args.host], stdout=subprocess.PIPE, text=True
        )
        port = int(server.stdout.readline().split()[1])
    try:
        cpu_before = cpu_seconds(server.pid) if server else None
        count, failures, elapsed, client_cpu = load(
            args.host, port, args.connections, args.seconds, body, args.processes)
        cpu = (cpu_seconds(server.pid) - cpu_before) / elapsed if server else None
    finally:
        if server:
            server.terminate()
            server.wait(timeout=5)

    line = "%d requests in %.2f s over %d connections (model %s%s): %.0f requests/s" % (
        count, elapsed, args.connections, args.model, ", json" if args.json else "", count / elapsed)
    if cpu is not None:
        line += "; server CPU %.0f%% of one core (%.0f requests per server CPU-second)" % (
            cpu * 100, count / elapsed / cpu if cpu else 0)
    line += ", client CPU %.0f%% of one core (%d process%s)" % (
        client_cpu / elapsed * 100, args.processes, "" if args.processes == 1 else "es")
    if failures:
        line += ", %d non-200 responses" % failures
    print(line)
    return 1 if failures or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
