"""The blocking client against a real `agentd serve`."""

from __future__ import annotations

import os
import signal
import unittest
import uuid
from typing import List

import agentd_client
from agentd_client import Client, Event, JobStatus

from support import SCRIPTED_PLAN, Daemon, DaemonTestCase, gated_plan, kinds, wait_until


def assert_contiguous(test: unittest.TestCase, events: List[Event], first: int = 1) -> None:
    """Every seq from `first` on, once, in order: what a watch promises."""
    test.assertEqual([e.seq for e in events], list(range(first, first + len(events))), kinds(events))


class ClientTests(DaemonTestCase):

    def submit_scripted(self, **kwargs: object) -> agentd_client.Job:
        return self.client.submit(plan_text=SCRIPTED_PLAN, goal="two steps", cwd=self.work, **kwargs)  # type: ignore[arg-type]

    def submit_gated(self) -> "tuple[agentd_client.Job, str]":
        """A job held running until the returned gate file exists (created at cleanup at the latest)."""
        gate = os.path.join(self.work, f"gate-{uuid.uuid4().hex}")
        self.addCleanup(lambda: open(gate, "w").close())
        job = self.client.submit(plan_text=gated_plan(), goal="held", inputs={"gate": gate}, cwd=self.work)
        return job, gate

    def wait_for_actor_call(self, job_id: str) -> None:
        def started() -> bool:
            return any(e.kind == "call.started" and e.role == "actor" for e in self.client.events(job_id))

        wait_until(started, what=f"job {job_id}'s actor call to start")

    # -- jobs ---------------------------------------------------------------------------------------

    def test_status_reports_the_daemon_it_talks_to(self) -> None:
        status = self.client.status()
        assert self.daemon.process is not None
        self.assertEqual(status.pid, self.daemon.process.pid)
        self.assertEqual(status.socket, self.daemon.socket)
        self.assertEqual(status.protocol_version, agentd_client.PROTOCOL_VERSION)
        self.assertTrue(status.accepting)
        self.assertTrue(status.storage_ok, status.storage)
        self.assertEqual(set(status.jobs), JobStatus.ALL)

    def test_submit_then_wait_returns_the_finished_job(self) -> None:
        job = self.submit_scripted(inputs={"n": 1})
        self.assertTrue(job.created)
        self.assertEqual(job.status, JobStatus.QUEUED)
        self.assertEqual((job.plan, job.goal, job.inputs), ("py-scripted", "two steps", {"n": 1}))
        final = self.client.wait(job.id)
        self.assertEqual(final.id, job.id)
        self.assertTrue(final.succeeded and final.is_terminal)
        self.assertEqual(final.reason, "both steps done")
        self.assertIsNotNone(final.finished_at)

    def test_a_repeated_idempotency_key_returns_the_first_job(self) -> None:
        key = f"key-{uuid.uuid4().hex}"
        first = self.submit_scripted(idempotency_key=key)
        again = self.client.submit(plan_text="not even a plan", goal="another goal", idempotency_key=key)
        self.assertEqual(again.id, first.id)
        self.assertEqual((first.created, again.created), (True, False))
        self.assertEqual(again.goal, "two steps")
        self.assertEqual(again.idempotency_key, key)

    def test_submit_by_path_resolves_a_relative_plan_path(self) -> None:
        with open(os.path.join(self.work, "plan.yaml"), "w") as f:
            f.write(SCRIPTED_PLAN)
        before = os.getcwd()
        os.chdir(self.work)
        try:
            job = self.client.submit("plan.yaml", goal="by path")
        finally:
            os.chdir(before)
        self.assertTrue(self.client.wait(job.id).succeeded)

    def test_submit_takes_exactly_one_plan(self) -> None:
        with self.assertRaises(ValueError):
            self.client.submit()
        with self.assertRaises(ValueError):
            self.client.submit("a.yaml", plan_text=SCRIPTED_PLAN)

    def test_get_counts_completed_calls_per_role(self) -> None:
        job = self.submit_scripted()
        self.client.wait(job.id)
        got = self.client.get(job.id)
        # Step 0 twice (the critic fails its first attempt), step 1 once, then the verifier.
        self.assertEqual(got.completed_calls, {"actor": 3, "critic": 3, "verifier": 1})
        assert got.usage is not None
        self.assertEqual(got.usage["total"]["calls"], 7)

    def test_list_filters_by_status_and_keeps_the_newest(self) -> None:
        held, gate = self.submit_gated()
        done = self.submit_scripted()
        self.client.wait(done.id)
        running = self.client.list(status=JobStatus.RUNNING)
        self.assertIn(held.id, [j.id for j in running])
        self.assertTrue(all(j.status == JobStatus.RUNNING for j in running))
        newest = self.client.list(limit=1)
        self.assertEqual([j.id for j in newest], [done.id])
        open(gate, "w").close()
        self.assertTrue(self.client.wait(held.id).succeeded)

    def test_cancel_ends_a_running_job_and_returns_a_finished_one_unchanged(self) -> None:
        held, _ = self.submit_gated()
        self.wait_for_actor_call(held.id)
        cancelled = self.client.cancel(held.id)
        self.assertEqual((cancelled.status, cancelled.reason), (JobStatus.CANCELLED, "cancelled by request"))
        again = self.client.cancel(held.id)
        self.assertEqual((again.status, again.finished_at), (JobStatus.CANCELLED, cancelled.finished_at))

    def test_wait_times_out_and_the_connection_stays_usable(self) -> None:
        held, gate = self.submit_gated()
        with self.assertRaises(TimeoutError):
            self.client.wait(held.id, timeout=0.2)
        self.assertEqual(self.client.get(held.id).status, JobStatus.RUNNING)
        open(gate, "w").close()
        # The abandoned wait's late answer arrives too; this call gets its own.
        self.assertTrue(self.client.wait(held.id).succeeded)
        self.assertEqual(self.client.status().pid, self.daemon.process.pid if self.daemon.process else None)

    def test_prune_dry_run_counts_finished_jobs(self) -> None:
        job = self.submit_scripted()
        final = self.client.wait(job.id)
        assert final.finished_at is not None
        result = self.client.prune(before=final.finished_at + 1, statuses=[JobStatus.SUCCEEDED], dry_run=True)
        self.assertTrue(result.dry_run)
        self.assertEqual(result.statuses, [JobStatus.SUCCEEDED])
        self.assertGreaterEqual(result.jobs, 1)
        self.assertGreater(result.events, result.jobs)
        self.assertIsNone(result.prune)
        self.assertTrue(self.client.get(job.id).succeeded)

    # -- watching -----------------------------------------------------------------------------------

    def test_watch_streams_a_finished_jobs_whole_history_then_its_final_state(self) -> None:
        job = self.submit_scripted()
        self.client.wait(job.id)
        watch = self.client.watch(job.id)
        events = list(watch)
        assert_contiguous(self, events)
        self.assertEqual(events[0].kind, "job.submitted")
        self.assertTrue(events[-1].is_terminal_state)
        self.assertEqual(events[-1].payload["to"], JobStatus.SUCCEEDED)
        self.assertEqual(kinds(events).count("call.completed"), 7)
        self.assertIsNotNone(watch.job)
        assert watch.job is not None
        self.assertTrue(watch.job.succeeded)
        self.assertEqual(watch.last_seq, events[-1].seq)
        # Steps are zero-based on the wire: the critic failed step 0, attempt 0.
        verdicts = [(e.step, e.attempt, e.payload["verdict"]["verdict"]) for e in events if e.kind == "call.completed" and e.role == "critic"]
        self.assertEqual(verdicts, [(0, 0, "fail"), (0, 1, "pass"), (1, 0, "pass")])

    def test_watch_resumes_after_a_seq(self) -> None:
        job = self.submit_scripted()
        self.client.wait(job.id)
        everything = list(self.client.watch(job.id))
        resumed = list(self.client.watch(job.id, since=5))
        self.assertEqual(resumed, everything[5:])
        self.assertEqual(resumed[0].seq, 6)
        past_the_end = self.client.watch(job.id, since=everything[-1].seq)
        self.assertEqual(list(past_the_end), [])
        self.assertIsNotNone(past_the_end.job)

    def test_a_live_watch_lets_other_calls_through_on_the_same_client(self) -> None:
        held, gate = self.submit_gated()
        watch = self.client.watch(held.id)
        seen: List[Event] = []
        for event in watch:
            seen.append(event)
            if event.kind == "call.started" and event.role == "actor":
                # The job is held in this call: other requests are answered while the watch is open.
                self.assertEqual(self.client.get(held.id).status, JobStatus.RUNNING)
                self.assertEqual(len(self.client.list(limit=3)), min(3, len(self.client.list())))
                open(gate, "w").close()
        assert_contiguous(self, seen)
        self.assertIn("call.completed", kinds(seen))
        self.assertTrue(seen[-1].is_terminal_state)
        assert watch.job is not None
        self.assertTrue(watch.job.succeeded)

    def test_two_watches_on_one_client_each_get_their_own_jobs_events(self) -> None:
        (a, gate_a), (b, gate_b) = self.submit_gated(), self.submit_gated()
        watch_a, watch_b = self.client.watch(a.id), self.client.watch(b.id)
        got_a, got_b = [next(watch_a)], [next(watch_b)]
        open(gate_a, "w").close()
        open(gate_b, "w").close()
        # Interleaved: whatever arrives for one is kept for it while the other is read.
        open_watches = [(watch_a, got_a), (watch_b, got_b)]
        while open_watches:
            for pair in list(open_watches):
                event = next(pair[0], None)
                if event is None:
                    open_watches.remove(pair)
                else:
                    pair[1].append(event)
        for job, got in ((a, got_a), (b, got_b)):
            assert_contiguous(self, got)
            self.assertEqual({e.job for e in got}, {job.id})
            self.assertTrue(got[-1].is_terminal_state)
        self.assertTrue(watch_a.job and watch_a.job.succeeded and watch_b.job and watch_b.job.succeeded)

    def test_two_watches_of_one_job_from_different_seqs(self) -> None:
        job = self.submit_scripted()
        self.client.wait(job.id)
        later, earlier = self.client.watch(job.id, since=5), self.client.watch(job.id)
        # The later watch's request goes first: its events arrive before the earlier one's own.
        got_later = [next(later)]
        got_earlier = list(earlier)
        got_later += list(later)
        assert_contiguous(self, got_earlier)
        assert_contiguous(self, got_later, first=6)
        self.assertEqual(got_later, got_earlier[5:])

    def test_leaving_a_watch_early_leaves_the_client_usable(self) -> None:
        held, gate = self.submit_gated()
        self.wait_for_actor_call(held.id)
        watch = self.client.watch(held.id)
        # The daemon sends the whole history at once; all but the first event are still unread.
        first = next(watch)
        self.assertEqual(first.kind, "job.submitted")
        watch.close()
        # The left watch's events of this job, read while this one runs, are not taken for its own.
        again = self.client.watch(held.id)
        seen = [next(again)]
        open(gate, "w").close()
        seen += list(again)
        assert_contiguous(self, seen)
        self.assertTrue(seen[-1].is_terminal_state)
        self.assertTrue(self.client.wait(held.id).succeeded)

    def test_watch_reads_event_lines_far_longer_than_one_read(self) -> None:
        big = "x" * (3 << 20)
        plan = SCRIPTED_PLAN.replace('reply: {output: "step {step}, first try"}', f'reply: {{output: "{big}"}}')
        path = os.path.join(self.work, "big.yaml")
        with open(path, "w") as f:
            f.write(plan)
        job = self.client.submit(path, goal="big replies", cwd=self.work)
        events = list(self.client.watch(job.id))
        assert_contiguous(self, events)
        replies = [e.payload["reply"] for e in events if e.kind == "call.completed" and e.role == "actor"]
        self.assertTrue(any(big in reply for reply in replies), [len(r) for r in replies])

    # -- transcripts --------------------------------------------------------------------------------

    def test_transcript_pages_follow_next_after_seq_to_the_whole_log(self) -> None:
        job = self.submit_scripted()
        self.client.wait(job.id)
        watched = list(self.client.watch(job.id))
        pages = list(self.client.transcript_pages(job.id, limit=4))
        self.assertGreater(len(pages), 2)
        for page in pages[:-1]:
            self.assertEqual(len(page.events), 4)
            self.assertEqual(page.next_after_seq, page.events[-1].seq)
        self.assertIsNone(pages[-1].next_after_seq)
        self.assertEqual([e for p in pages for e in p.events], watched)
        self.assertEqual(list(self.client.events(job.id, page_size=3)), watched)
        self.assertEqual(list(self.client.events(job.id, after_seq=4)), watched[4:])
        self.assertEqual(pages[0].job.id, job.id)

    # -- errors -------------------------------------------------------------------------------------

    def test_errors_carry_the_daemons_code_and_message(self) -> None:
        with self.assertRaises(agentd_client.NoSuchJob) as caught:
            self.client.get("01NOSUCHJOB")
        self.assertEqual(caught.exception.code, -32002)
        self.assertEqual(caught.exception.message, "no such job: 01NOSUCHJOB")
        self.assertEqual(caught.exception.method, "job.get")
        self.assertIsInstance(caught.exception, agentd_client.RPCError)

        with self.assertRaises(agentd_client.InvalidPlan) as plan:
            self.client.submit(plan_text="name: x\n", plan_name="x.yaml")
        self.assertEqual(plan.exception.code, -32003)
        self.assertTrue(plan.exception.message.startswith("invalid plan: x.yaml:"), plan.exception.message)

        with self.assertRaises(agentd_client.InvalidParams) as params:
            self.client.list(status="bogus")
        self.assertEqual(params.exception.code, -32602)
        self.assertIn("bogus", params.exception.message)

        with self.assertRaises(agentd_client.MethodNotFound) as method:
            self.client.call("job.nope")
        self.assertEqual((method.exception.code, method.exception.message), (-32601, "method not found: job.nope"))
        # Each error leaves the connection serving.
        self.assertTrue(self.client.status().accepting)

    def test_a_missing_socket_says_the_daemon_is_not_running(self) -> None:
        path = os.path.join(self.work, "none.sock")
        with self.assertRaises(agentd_client.DaemonNotRunning) as caught:
            Client(path)
        self.assertIn(path, str(caught.exception))
        self.assertIn("agentd serve", str(caught.exception))


class ErrorMappingTests(unittest.TestCase):
    """Each error code of docs/protocol.md becomes its own exception; an unknown one stays an RPCError."""

    def test_each_code_has_its_class(self) -> None:
        codes = {
            -32700: agentd_client.ParseError,
            -32600: agentd_client.InvalidRequest,
            -32601: agentd_client.MethodNotFound,
            -32602: agentd_client.InvalidParams,
            -32001: agentd_client.FrameTooLarge,
            -32002: agentd_client.NoSuchJob,
            -32003: agentd_client.InvalidPlan,
            -32004: agentd_client.ShuttingDown,
            -32005: agentd_client.StorageError,
            -32006: agentd_client.WorkspaceInUse,
            -32007: agentd_client.TooManyClients,
            -32008: agentd_client.PermissionDenied,
            -32009: agentd_client.TooManyQueuedJobs,
            -32010: agentd_client.StorageUnavailable,
            -32011: agentd_client.WorkspaceRefused,
            -32012: agentd_client.ReplyBacklog,
            -32013: agentd_client.GateNotWaiting,
        }
        for code, cls in codes.items():
            error = agentd_client.RPCError.from_reply({"code": code, "message": "m", "data": {"k": 1}}, "job.x")
            self.assertIs(type(error), cls)
            self.assertEqual((error.code, error.message, error.data, error.method), (code, "m", {"k": 1}, "job.x"))
        unknown = agentd_client.RPCError.from_reply({"code": -32099, "message": "new"})
        self.assertIs(type(unknown), agentd_client.RPCError)
        self.assertEqual(str(unknown), "new (code -32099)")
        with self.assertRaises(agentd_client.ProtocolViolation):
            agentd_client.RPCError.from_reply({"message": "no code"})


class RestartTests(unittest.TestCase):
    """A daemon of its own, stopped and started again under a watch."""

    def setUp(self) -> None:
        self.daemon = Daemon()
        self.addCleanup(self.daemon.close)
        self.daemon.start()
        self.client = Client(self.daemon.socket)
        self.addCleanup(self.client.close)
        self.gate = os.path.join(self.daemon.dir, "gate")
        self.addCleanup(lambda: open(self.gate, "w").close())

    def held_job_seen_to_call(self, watch: "agentd_client.Watch") -> List[Event]:
        seen: List[Event] = []
        for event in watch:
            seen.append(event)
            if event.kind == "call.started" and event.role == "actor":
                return seen
        self.fail(f"the job ended before its actor call: {kinds(seen)}")

    def restart(self) -> None:
        self.assertEqual(self.daemon.stop(signal.SIGTERM), 0, self.daemon.log())
        self.daemon.start()

    def test_a_lost_watch_says_where_to_resume_and_resuming_misses_nothing(self) -> None:
        job = self.client.submit(plan_text=gated_plan(), goal="held", inputs={"gate": self.gate}, cwd=self.daemon.dir)
        watch = self.client.watch(job.id)
        seen = self.held_job_seen_to_call(watch)
        self.restart()
        with self.assertRaises(agentd_client.ConnectionLost) as caught:
            seen += list(watch)
        self.assertEqual(caught.exception.last_seq, seen[-1].seq)
        self.assertIn(f"since={seen[-1].seq}", str(caught.exception))

        client = Client(self.daemon.socket)
        self.addCleanup(client.close)
        assert caught.exception.last_seq is not None
        resumed = client.watch(job.id, since=caught.exception.last_seq)
        seen.append(next(resumed))
        open(self.gate, "w").close()
        seen += list(resumed)
        assert_contiguous(self, seen)
        self.assertIn("job.resumed", kinds(seen))
        self.assertTrue(resumed.job and resumed.job.succeeded)

    def test_a_watch_with_reconnect_follows_the_job_across_a_restart(self) -> None:
        job = self.client.submit(plan_text=gated_plan(), goal="held", inputs={"gate": self.gate}, cwd=self.daemon.dir)
        watch = self.client.watch(job.id, reconnect=60)
        seen = self.held_job_seen_to_call(watch)
        self.restart()
        seen.append(next(watch))
        self.assertEqual(seen[-1].seq, seen[-2].seq + 1)
        open(self.gate, "w").close()
        seen += list(watch)
        assert_contiguous(self, seen)
        self.assertIn("job.resumed", kinds(seen))
        self.assertTrue(seen[-1].is_terminal_state)
        self.assertTrue(watch.job and watch.job.succeeded)
        # The client is connected to the new daemon.
        self.assertEqual(self.client.status().pid, self.daemon.process.pid if self.daemon.process else None)


if __name__ == "__main__":
    unittest.main()
