#!/usr/bin/env python3
"""A tiny OTLP/HTTP collector for agentd's live-export tests.

    python3 Tests/Fixtures/otlp_collector.py --dir DIR [--port 0] [--status 200] [--fail-first N]

Accepts `POST /v1/traces`, saves each body as DIR/request-N.json and its headers as
DIR/request-N.headers.json, and answers `--status` (200 by default; the first `--fail-first` requests
get 503). Prints `listening PORT` on stdout once it accepts connections; exits 0 on SIGTERM/SIGINT.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--fail-first", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    lock = threading.Lock()
    counter = {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *a) -> None:
            sys.stderr.write("collector: " + (fmt % a) + "\n")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with lock:
                counter["n"] += 1
                n = counter["n"]
            if self.path != "/v1/traces":
                self.reply(404, b'{"error":"not found"}')
                return
            if n <= args.fail_first:
                self.reply(503, b'{"error":"try again"}')
                return
            base = os.path.join(args.dir, f"request-{n}")
            with open(base + ".headers.json", "w") as f:
                json.dump({k.lower(): v for k, v in self.headers.items()}, f)
            with open(base + ".json.tmp", "wb") as f:
                f.write(body)
            os.rename(base + ".json.tmp", base + ".json")
            self.reply(args.status, b"{}")

        def reply(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
