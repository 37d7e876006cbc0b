"""Approvals: tool calls a plan's gates hold for a person, listed and decided through the client."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import unittest
from typing import List

import agentd_client
from agentd_client import JobStatus

from support import Daemon, DaemonTestCase, kinds, wait_until

#: The actor proposes one command that the gate holds for a person; after the tool's result it answers.
GATED_PLAN = """
name: py-approval
models:
  script:
    backend: scripted
    script:
      actor:
        - turn: 0
          reply: {tool_calls: [{name: run_command, arguments: {argv: [sh, -c, "echo proposed >> pushed.txt", git-push]}}]}
        - reply: {output: "asked to push"}
      critic:
        - reply: {verdict: pass, score: 1, feedback: "ok"}
      verifier:
        - reply: {verified: true, reason: "decided"}
roles:
  actor: {model: script, prompt: "Push with the tools.", tools: [run_command]}
  critic: {model: script, prompt: "Judge."}
  verifier: {model: script, prompt: "Verify."}
steps:
  - "push the tag"
sandbox: false
gates:
  - {tool: run_command, args: [git-push], review: human}
"""


class GateTests(DaemonTestCase):
    work_prefix = "py-gate-"

    def held(self) -> agentd_client.Gate:
        """Submits the plan and returns its gate once a person is asked."""
        job = self.client.submit(plan_text=GATED_PLAN, goal="push", cwd=self.work)
        found: List[agentd_client.Gate] = []

        def asked() -> bool:
            found[:] = [g for g in self.client.pending_gates() if g.job == job.id]
            return bool(found)

        wait_until(asked, what=f"job {job.id}'s gate to ask a person")
        self.assertEqual(self.client.get(job.id).status, JobStatus.AWAITING_APPROVAL)
        return found[0]

    def test_approve_runs_the_held_call(self) -> None:
        gate = self.held()
        self.assertEqual((gate.tool, gate.plan, gate.step, gate.attempt), ("run_command", "py-approval", 0, 0))
        self.assertEqual(json.loads(gate.arguments)["argv"][-1], "git-push")
        self.assertRegex(gate.request_sha256, "^[0-9a-f]{64}$")
        self.assertFalse(os.path.exists(os.path.join(self.work, "pushed.txt")), "nothing ran before the decision")
        decision = self.client.approve(gate, note="go")
        self.assertEqual((decision.job, decision.gate), (gate.job, gate.gate))
        self.assertTrue(self.client.wait(gate.job).succeeded)
        with open(os.path.join(self.work, "pushed.txt")) as f:
            self.assertEqual(f.read(), "proposed\n")
        events = list(self.client.events(gate.job))
        decided = [e for e in events if e.seq == decision.seq]
        self.assertEqual(kinds(decided), ["gate.decided"])
        self.assertEqual(decided[0].payload["decision"], "approved")
        # Decided once: the same decision again is refused.
        with self.assertRaises(agentd_client.GateNotWaiting) as again:
            self.client.approve(gate)
        self.assertEqual(again.exception.code, -32013)

    def test_approve_with_edited_arguments_runs_those(self) -> None:
        gate = self.held()
        edited = {"argv": ["sh", "-c", "echo edited >> pushed.txt", "git-push"]}
        self.client.approve(gate, arguments=edited)
        self.assertTrue(self.client.wait(gate.job).succeeded)
        with open(os.path.join(self.work, "pushed.txt")) as f:
            self.assertEqual(f.read(), "edited\n")

    def test_reject_gives_the_actor_the_note_and_runs_nothing(self) -> None:
        gate = self.held()
        self.client.reject(gate, "not on a Friday")
        self.client.wait(gate.job)
        self.assertFalse(os.path.exists(os.path.join(self.work, "pushed.txt")))
        results = [e.payload for e in self.client.events(gate.job) if e.kind == "tool.completed"]
        self.assertEqual(len(results), 1)
        self.assertIn("not on a Friday", json.dumps(results[0]))
        self.assertNotIn(gate.job, [g.job for g in self.client.pending_gates()])


class AsyncGateTests(unittest.IsolatedAsyncioTestCase):
    async def test_a_watcher_sees_the_job_wait_and_an_approval_let_it_go(self) -> None:
        daemon = Daemon()
        self.addCleanup(daemon.close)
        daemon.start()
        work = tempfile.mkdtemp(prefix="py-gate-", dir=daemon.dir)
        async with await agentd_client.AsyncClient.connect(daemon.socket) as client:
            job = await client.submit(plan_text=GATED_PLAN, goal="push", cwd=work)
            watch = client.watch(job.id)
            seen = []
            async for event in watch:
                seen.append(event)
                if event.kind == "gate.requested":
                    # The request is recorded before a person is asked: poll until the gate is listed.
                    gates = await client.pending_gates()
                    for _ in range(1500):
                        if gates:
                            break
                        await asyncio.sleep(0.02)
                        gates = await client.pending_gates()
                    self.assertEqual([(g.job, g.request_sha256) for g in gates], [(job.id, event.payload["request_sha256"])])
                    await client.approve(gates[0])
            self.assertIn("gate.decided", kinds(seen))
            self.assertTrue(watch.job and watch.job.succeeded)
            self.assertEqual(await client.pending_gates(), [])


if __name__ == "__main__":
    unittest.main()
