"""The asyncio client against a real `agentd serve`."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import unittest
import uuid
from typing import List

import agentd_client
from agentd_client import AsyncClient, Event, JobStatus

from support import SCRIPTED_PLAN, Daemon, gated_plan, kinds


def seqs(events: List[Event]) -> List[int]:
    return [e.seq for e in events]


class AsyncClientTests(unittest.IsolatedAsyncioTestCase):
    daemon: Daemon

    @classmethod
    def setUpClass(cls) -> None:
        cls.daemon = Daemon()
        cls.daemon.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.daemon.close()

    async def asyncSetUp(self) -> None:
        self.client = await AsyncClient.connect(self.daemon.socket)
        self.work = tempfile.mkdtemp(prefix="py-work-", dir=self.daemon.dir)

    async def asyncTearDown(self) -> None:
        await self.client.close()

    def gate(self) -> str:
        path = os.path.join(self.work, f"gate-{uuid.uuid4().hex}")
        self.addCleanup(lambda: open(path, "w").close())
        return path

    async def test_submit_wait_get_list(self) -> None:
        job = await self.client.submit(plan_text=SCRIPTED_PLAN, goal="async", idempotency_key=f"k-{uuid.uuid4().hex}", cwd=self.work)
        self.assertTrue(job.created)
        final = await self.client.wait(job.id)
        self.assertTrue(final.succeeded)
        got = await self.client.get(job.id)
        self.assertEqual(got.completed_calls, {"actor": 3, "critic": 3, "verifier": 1})
        listed = await self.client.list(status=JobStatus.SUCCEEDED, limit=100000)
        self.assertIn(job.id, [j.id for j in listed])
        again = await self.client.submit(plan_text=SCRIPTED_PLAN, idempotency_key=job.idempotency_key)
        self.assertEqual((again.id, again.created), (job.id, False))

    async def test_concurrent_calls_on_one_connection_each_get_their_own_answer(self) -> None:
        jobs = await asyncio.gather(*(self.client.submit(plan_text=SCRIPTED_PLAN, goal=f"goal {i}", cwd=self.work) for i in range(20)))
        finals = await asyncio.gather(*(self.client.wait(j.id) for j in jobs))
        self.assertEqual([f.id for f in finals], [j.id for j in jobs])
        self.assertEqual([f.goal for f in finals], [f"goal {i}" for i in range(20)])
        gets, status = await asyncio.gather(asyncio.gather(*(self.client.get(j.id) for j in jobs)), self.client.status())
        self.assertEqual([g.id for g in gets], [j.id for j in jobs])
        self.assertIsInstance(status, agentd_client.DaemonStatus)

    async def test_watch_live_alongside_other_calls(self) -> None:
        gate = self.gate()
        job = await self.client.submit(plan_text=gated_plan(), goal="held", inputs={"gate": gate}, cwd=self.work)
        watch = self.client.watch(job.id)
        seen: List[Event] = []
        async for event in watch:
            seen.append(event)
            if event.kind == "call.started" and event.role == "actor":
                self.assertEqual((await self.client.get(job.id)).status, JobStatus.RUNNING)
                open(gate, "w").close()
        self.assertEqual(seqs(seen), list(range(1, len(seen) + 1)))
        self.assertTrue(seen[-1].is_terminal_state)
        self.assertTrue(watch.job and watch.job.succeeded)
        resumed = [e async for e in self.client.watch(job.id, since=3)]
        self.assertEqual(resumed, seen[3:])

    async def test_two_concurrent_watches_on_one_connection(self) -> None:
        gates = [self.gate(), self.gate()]
        jobs = [
            await self.client.submit(plan_text=gated_plan(), goal="held", inputs={"gate": g}, cwd=self.work) for g in gates
        ]

        async def follow(job_id: str) -> List[Event]:
            return [e async for e in self.client.watch(job_id)]

        followers = [asyncio.ensure_future(follow(j.id)) for j in jobs]
        for gate in gates:
            open(gate, "w").close()
        results = await asyncio.gather(*followers)
        for job, events in zip(jobs, results):
            self.assertEqual(seqs(events), list(range(1, len(events) + 1)))
            self.assertEqual({e.job for e in events}, {job.id})
            self.assertTrue(events[-1].is_terminal_state)

    async def test_transcript_pages_and_events(self) -> None:
        job = await self.client.submit(plan_text=SCRIPTED_PLAN, cwd=self.work)
        await self.client.wait(job.id)
        watched = [e async for e in self.client.watch(job.id)]
        pages = [p async for p in self.client.transcript_pages(job.id, limit=5)]
        self.assertTrue(all(len(p.events) == 5 for p in pages[:-1]))
        self.assertEqual([e for p in pages for e in p.events], watched)
        self.assertEqual([e async for e in self.client.events(job.id, page_size=2)], watched)

    async def test_cancel(self) -> None:
        job = await self.client.submit(plan_text=gated_plan(), goal="held", inputs={"gate": self.gate()}, cwd=self.work)
        cancelled = await self.client.cancel(job.id)
        self.assertEqual(cancelled.status, JobStatus.CANCELLED)
        self.assertEqual((await self.client.wait(job.id)).status, JobStatus.CANCELLED)

    async def test_errors_and_timeouts(self) -> None:
        with self.assertRaises(agentd_client.NoSuchJob) as caught:
            await self.client.wait("01NOSUCHJOB")
        self.assertEqual((caught.exception.code, caught.exception.message), (-32002, "no such job: 01NOSUCHJOB"))
        with self.assertRaises(agentd_client.InvalidParams):
            await self.client.call("job.list", {"limit": 0})
        with self.assertRaises(agentd_client.MethodNotFound):
            await self.client.call("job.nope")
        gate = self.gate()
        job = await self.client.submit(plan_text=gated_plan(), goal="held", inputs={"gate": gate}, cwd=self.work)
        with self.assertRaises(asyncio.TimeoutError):
            await self.client.wait(job.id, timeout=0.2)
        open(gate, "w").close()
        self.assertTrue((await self.client.wait(job.id)).succeeded)
        with self.assertRaises(agentd_client.DaemonNotRunning):
            await AsyncClient.connect(os.path.join(self.work, "none.sock"))


class AsyncRestartTests(unittest.IsolatedAsyncioTestCase):
    async def test_a_watch_with_reconnect_follows_the_job_across_a_restart(self) -> None:
        daemon = Daemon()
        self.addCleanup(daemon.close)
        daemon.start()
        gate = os.path.join(daemon.dir, "gate")
        self.addCleanup(lambda: open(gate, "w").close())
        client = await AsyncClient.connect(daemon.socket)
        try:
            job = await client.submit(plan_text=gated_plan(), goal="held", inputs={"gate": gate}, cwd=daemon.dir)
            watch = client.watch(job.id, reconnect=60)
            seen: List[Event] = []
            async for event in watch:
                seen.append(event)
                if event.kind == "call.started" and event.role == "actor" and daemon.starts == 1:
                    loop = asyncio.get_running_loop()
                    self.assertEqual(await loop.run_in_executor(None, daemon.stop, signal.SIGTERM), 0, daemon.log())
                    await loop.run_in_executor(None, daemon.start)
                elif event.kind == "job.resumed":
                    open(gate, "w").close()
            self.assertEqual(daemon.starts, 2)
            self.assertEqual(seqs(seen), list(range(1, len(seen) + 1)), kinds(seen))
            self.assertIn("job.resumed", kinds(seen))
            self.assertTrue(watch.job and watch.job.succeeded)
        finally:
            await client.close()


if __name__ == "__main__":
    unittest.main()
