"""The daemon the client's tests talk to: the built `agentd` binary serving a socket and a database in
a fresh temporary directory, and the plans the tests submit."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from typing import Callable, List, Optional

import agentd_client

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))


def agentd_binary() -> str:
    """`$AGENTD_BINARY` (scripts/test.sh sets it to the build it tested), else the debug build."""
    path = os.environ.get("AGENTD_BINARY") or os.path.join(REPO, ".build", "debug", "agentd")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"no agentd binary at {path}: build it (swift build) or set AGENTD_BINARY")
    return path


def wait_until(condition: Callable[[], bool], timeout: float = 30.0, what: str = "a condition") -> None:
    """Polls `condition` until it holds; fails the test at the deadline (which only ends a hung test)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


class Daemon:
    """`agentd serve` on a socket and database of its own; `stop`, `start` again on the same files."""

    def __init__(self) -> None:
        # Short: a Unix socket path is limited to about 100 bytes.
        self.dir = tempfile.mkdtemp(prefix="agentd-py-", dir="/tmp")
        self.socket = os.path.join(self.dir, "d.sock")
        self.db = os.path.join(self.dir, "agentd.db")
        self.process: Optional[subprocess.Popen[bytes]] = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(os.path.join(self.dir, f"serve-{self.starts}.log"), "wb")
        env = {k: v for k, v in os.environ.items() if k not in ("AGENTD_SOCKET", "AGENTD_DB")}
        argv = [agentd_binary(), "serve", "--socket", self.socket, "--db", self.db, "--drain-seconds", "1"]
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=self.dir)
        log.close()

        def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"agentd serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                with agentd_client.Client(self.socket, timeout=5) as client:
                    return client.status().pid == self.process.pid
            except agentd_client.ConnectionFailed:
                return False

        wait_until(answers, what="agentd serve to answer daemon.status")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signals the daemon and reaps it; returns its exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log(self) -> str:
        text = []
        for i in range(1, self.starts + 1):
            with open(os.path.join(self.dir, f"serve-{i}.log"), errors="replace") as f:
                text.append(f.read())
        return "\n".join(text)

    def cli(self, *args: str) -> "subprocess.CompletedProcess[str]":
        """The `agentd` CLI against this daemon."""
        return subprocess.run([agentd_binary(), *args, "--socket", self.socket], capture_output=True, text=True, timeout=60)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- plans ------------------------------------------------------------------------------------------

#: Two fixed steps; the critic fails step 0's first attempt, the rerun passes; the verifier accepts.
SCRIPTED_PLAN = """
name: py-scripted
models:
  script:
    backend: scripted
    script:
      actor:
        - feedback: true
          reply: {output: "step {step}, revised"}
        - reply: {output: "step {step}, first try"}
      critic:
        - step: 0
          attempt: 0
          reply: {verdict: "fail", score: 0.2, feedback: "too short"}
        - reply: {verdict: "pass", score: 0.9, feedback: "ok"}
      verifier:
        - reply: {verified: true, reason: "both steps done"}
roles:
  actor: {model: script, prompt: "Do the step."}
  critic: {model: script, prompt: "Judge."}
  verifier: {model: script, prompt: "Verify."}
steps:
  - "write the draft"
  - "add a summary"
policy:
  max_attempts: 2
"""


def gated_plan(python: str = sys.executable) -> str:
    """One step whose actor, a command, answers only once the file named by input `gate` exists: the
    job stays running until the test lets it go."""
    script = os.path.join(HERE, "gated_actor.py")
    return f"""
name: py-gated
models:
  script:
    backend: scripted
    script:
      critic:
        - reply: {{verdict: "pass", score: 1, feedback: "ok"}}
      verifier:
        - reply: {{verified: true, reason: "ok"}}
  gated:
    backend: command
    command: ["{python}", "{script}", "{{input.gate}}"]
    sandbox: false
    timeout: 60s
roles:
  actor: {{model: gated, prompt: "Do the step."}}
  critic: {{model: script, prompt: "Judge."}}
  verifier: {{model: script, prompt: "Verify."}}
steps:
  - "wait for the gate"
policy:
  max_attempts: 1
"""


def kinds(events: List[agentd_client.Event]) -> List[str]:
    return [e.kind for e in events]


class DaemonTestCase(unittest.TestCase):
    """Tests sharing one daemon per class, each with its own client and a fresh work directory."""

    daemon: Daemon
    client: agentd_client.Client
    work: str
    work_prefix = "py-work-"

    @classmethod
    def setUpClass(cls) -> None:
        cls.daemon = Daemon()
        cls.daemon.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.daemon.close()

    def setUp(self) -> None:
        self.client = agentd_client.Client(self.daemon.socket)
        self.addCleanup(self.client.close)
        self.work = tempfile.mkdtemp(prefix=self.work_prefix, dir=self.daemon.dir)
