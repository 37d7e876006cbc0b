"""The record over the socket: search, verify, stats, backup and rendered transcripts."""

from __future__ import annotations

import os
import unittest
from typing import Any, Callable

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
            job = client.submit(plan_text=SCRIPTED_PLAN, goal="a goal about zeppelins", cwd=cls.daemon.dir)
            cls.job = client.wait(job.id)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.daemon.close()

    def setUp(self) -> None:
        self.client = Client(self.daemon.socket)
        self.addCleanup(self.client.close)

    def result(self, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except agentd_client.MethodNotFound as error:
            self.skipTest(f"this daemon has no such method yet: {error.message}")
        except agentd_client.Unsupported as error:
            self.skipTest(str(error))

    def test_verify_one_job_and_all(self) -> None:
        one = self.result(lambda: self.client.verify(self.job.id))
        self.assertIn(self.job.id, repr(one))
        every = self.result(lambda: self.client.verify())
        self.assertIn(self.job.id, repr(every))

    def test_search_finds_the_goal(self) -> None:
        found = self.result(lambda: self.client.search("zeppelins"))
        self.assertIn(self.job.id, repr(found))

    def test_stats_of_the_plan(self) -> None:
        stats = self.result(lambda: self.client.stats(plan="py-scripted"))
        self.assertIn("py-scripted", repr(stats))

    def test_backup_writes_a_copy(self) -> None:
        path = os.path.join(self.daemon.dir, "copy.db")
        self.result(lambda: self.client.backup(path))
        self.assertTrue(os.path.getsize(path) > 0)

    def test_rendered_transcripts(self) -> None:
        text = self.result(lambda: self.client.render_transcript(self.job.id, "text"))
        self.assertIn("a goal about zeppelins", text)
        html = self.result(lambda: self.client.render_transcript(self.job.id, "html"))
        self.assertIn("<html", html.lower())


if __name__ == "__main__":
    unittest.main()
