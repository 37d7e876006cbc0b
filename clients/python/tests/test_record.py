"""The record over the socket: verify, search, stats, backup and rendered transcripts."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import unittest

import agentd_client
from agentd_client import Client

from support import SCRIPTED_PLAN, Daemon


class RecordTests(unittest.TestCase):
    daemon: Daemon
    job: agentd_client.Job

    @classmethod
    def setUpClass(cls) -> None:
        cls.daemon = Daemon()
        cls.daemon.start()
        with Client(cls.daemon.socket) as client:
            with unittest.TestCase().assertRaises(agentd_client.NoSuchJob):
                client.verify("01NOSUCHJOB")
            job = client.submit(plan_text=SCRIPTED_PLAN, goal="a goal about zeppelins", cwd=cls.daemon.dir)
            cls.job = client.wait(job.id)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.daemon.close()

    def setUp(self) -> None:
        self.client = Client(self.daemon.socket)
        self.addCleanup(self.client.close)

    def test_verify_recomputes_each_chain(self) -> None:
        events = list(self.client.events(self.job.id))
        one = self.client.verify(self.job.id)
        self.assertTrue(one.ok, one.raw)
        self.assertEqual((one.jobs, one.events), (1, len(events)))
        self.assertEqual([r.job for r in one.reports], [self.job.id])
        report = one.reports[0]
        self.assertTrue(report.ok)
        self.assertEqual(report.events, len(events))
        self.assertRegex(report.head or "", "^[0-9a-f]{64}$")
        every = self.client.verify()
        self.assertTrue(every.ok, every.raw)
        self.assertIn(self.job.id, [r.job for r in every.reports])
        with self.assertRaises(agentd_client.NoSuchJob):
            self.client.verify("01NOSUCHJOB")

    def test_verify_names_the_first_edited_event(self) -> None:
        # A daemon of its own: the edit breaks every later "verify all" on its database.
        daemon = Daemon()
        self.addCleanup(daemon.close)
        daemon.start()
        client = Client(daemon.socket)
        self.addCleanup(client.close)
        job = client.wait(client.submit(plan_text=SCRIPTED_PLAN, goal="to be edited", cwd=daemon.dir).id)
        self.assertTrue(client.verify().ok)
        # What someone with the database file could do: rewrite a recorded reply.
        with sqlite3.connect(daemon.db) as db:
            db.execute("DROP TRIGGER IF EXISTS events_append_only_update")
            edited = db.execute(
                "UPDATE events SET payload = replace(payload, 'too short', 'fine') WHERE job_id = ? AND kind = 'call.completed'"
                " AND role = 'critic' AND payload LIKE '%too short%' RETURNING seq",
                (job.id,),
            ).fetchall()
        self.assertEqual(len(edited), 1)
        result = client.verify(job.id)
        self.assertFalse(result.ok)
        report = result.reports[0]
        self.assertEqual((report.ok, report.seq, report.problem, report.kind), (False, edited[0][0], "edited", "call.completed"))
        self.assertTrue(report.message)
        self.assertFalse(client.verify().ok)

    def test_search_finds_events_and_filters_them(self) -> None:
        hits = self.client.search("zeppelins", job=self.job.id)
        self.assertTrue(hits)
        self.assertEqual({h.job for h in hits}, {self.job.id})
        submitted = [h for h in hits if h.kind == "job.submitted"]
        self.assertEqual([h.seq for h in submitted], [1])
        self.assertIn("**zeppelins**", submitted[0].snippet)
        critic = self.client.search('"too short"', job=self.job.id, role="critic", kind="call.completed")
        self.assertEqual([(h.role, h.step, h.attempt) for h in critic], [("critic", 0, 0)])
        self.assertIsNotNone(critic[0].call)
        self.assertEqual(self.client.search("zeppelins", kind="job.submitted", limit=1)[0].kind, "job.submitted")
        with self.assertRaises(agentd_client.InvalidParams):
            self.client.search('"unterminated')

    def test_stats_of_a_plan(self) -> None:
        stats = self.client.stats(plan="py-scripted")
        plans = stats["plans"]
        self.assertEqual([p["plan"] for p in plans], ["py-scripted"])
        self.assertGreaterEqual(plans[0]["jobs"], 1)
        # Every job of this plan reruns its first step once.
        self.assertEqual(plans[0]["reruns"], plans[0]["jobs"])
        self.assertEqual(self.client.stats(plan="no-such-plan")["plans"], [])

    def test_backup_writes_a_checked_copy(self) -> None:
        path = os.path.join(self.daemon.dir, "copy.db")
        result = self.client.backup(path)
        self.assertEqual((result.path, result.database), (path, self.daemon.db))
        self.assertEqual(result.bytes, os.path.getsize(path))
        with sqlite3.connect(path) as copy:
            self.assertEqual(copy.execute("SELECT count(*) FROM jobs").fetchone()[0], result.jobs)
        with self.assertRaises(agentd_client.InvalidParams):
            self.client.backup(path)

    def test_rendered_transcripts(self) -> None:
        text = self.client.render_transcript(self.job.id, "text")
        self.assertIn("a goal about zeppelins", text)
        self.assertIn("Step 1", text)
        self.assertIn("<html", self.client.render_transcript(self.job.id, "html").lower())
        lines = self.client.render_transcript(self.job.id, "jsonl").splitlines()
        self.assertEqual([json.loads(line) for line in lines], [e.raw for e in self.client.events(self.job.id)])
        with self.assertRaises(agentd_client.InvalidParams):
            self.client.render_transcript(self.job.id, "pdf")


class AsyncRecordTests(unittest.IsolatedAsyncioTestCase):
    """The same methods on the asyncio client, concurrently on one connection."""

    async def test_record_methods(self) -> None:
        daemon = Daemon()
        self.addCleanup(daemon.close)
        daemon.start()
        async with await agentd_client.AsyncClient.connect(daemon.socket) as client:
            with self.assertRaises(agentd_client.NoSuchJob):
                await client.verify("01NOSUCHJOB")
            job = await client.wait((await client.submit(plan_text=SCRIPTED_PLAN, goal="airships", cwd=daemon.dir)).id)
            path = os.path.join(daemon.dir, "copy.db")
            verified, hits, stats, backup, text = await asyncio.gather(
                client.verify(job.id),
                client.search("airships", kind="job.submitted"),
                client.stats(plan="py-scripted"),
                client.backup(path),
                client.render_transcript(job.id, "md"),
            )
            self.assertTrue(verified.ok and verified.reports[0].job == job.id, verified.raw)
            self.assertEqual([(h.job, h.seq) for h in hits], [(job.id, 1)])
            self.assertEqual([p["jobs"] for p in stats["plans"]], [1])
            self.assertEqual((backup.path, backup.jobs), (path, 1))
            self.assertIn("airships", text)


if __name__ == "__main__":
    unittest.main()
