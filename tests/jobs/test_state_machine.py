"""The job state machine, driven through the services against the real database and Redis.

Hypothesis interleaves what happens to a job in production — start, the broker delivering
its current message (or again, ``redelivered``, or an old one), progress, a cancel, a
retry, a run failing, succeeding or retrying, the reaper, the user's retry — and after
every step checks what a user relies on:

* the stored state is the one before it or one the table allows from it;
* ``finished_at`` is set exactly when the state is terminal;
* the events actually published on the job's topic (read back from its Redis log) hold
  one terminal event per life of the job: exactly one once it is terminal, never a second
  one before it is queued again, and each event's snapshot shows the state it names.

``JOBS_STATE_PROFILE=jobs-dev`` runs fewer examples while working on it; CI runs the
default profile (500 examples per backend).
"""

from __future__ import annotations

import functools
import json
import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import TestCase
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from taskstream.conf import conf
from taskstream.hub import keys
from taskstream.hub.redis import sync_client
from taskstream.jobs import job_cancel, job_retry, job_start
from taskstream.jobs.exceptions import IllegalTransition, JobCancelled, JobSuperseded
from taskstream.jobs.lifecycle import Run, run_claim
from taskstream.jobs.models import Job
from taskstream.jobs.services import job_reap
from taskstream.jobs.states import TERMINAL, State, can_move

settings.register_profile(
    "jobs-ci", max_examples=500, stateful_step_count=8, deadline=None, derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.function_scoped_fixture])
settings.register_profile("jobs-dev", parent=settings.get_profile("jobs-ci"), max_examples=50)
PROFILE = settings.get_profile(os.environ.get("JOBS_STATE_PROFILE", "jobs-ci"))

# Messages go to a queue no worker reads (purged at the end): the test is the worker.
QUEUE = f"tstest-states-{secrets.token_hex(4)}"
TERMINAL_EVENTS = {"job.succeeded": State.SUCCEEDED, "job.failed": State.FAILED,
                   "job.cancelled": State.CANCELLED}
STATE_EVENTS = {"job.created", "job.started", "job.retrying", *TERMINAL_EVENTS}

OWNER: Any = None


def committed(step: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``step`` as if its transactions committed at its end: the callbacks they left for
    after the commit (events, messages) run then. The whole test runs in one transaction
    that is rolled back, so 500 lives per backend take seconds rather than minutes."""

    @functools.wraps(step)
    def run(*args: Any, **kwargs: Any) -> Any:
        with TestCase.captureOnCommitCallbacks(execute=True):
            return step(*args, **kwargs)

    return run


class JobLife(RuleBasedStateMachine):
    runs = Bundle("runs")

    def __init__(self) -> None:
        super().__init__()
        self.job = committed(job_start)(kind="demo.slow", owner=OWNER, queue=QUEUE,
                             params={"steps": 1, "step_seconds": 0})
        self.state = State.QUEUED
        self.task_ids = [self.job.celery_task_id]
        self.read_up_to = "0-0"
        self.terminal_open = True  # a terminal event may come; False once one came

    def teardown(self) -> None:
        Job.objects.filter(pk=self.job.pk).delete()  # the reaper looks only at this one

    def _current_task_id(self) -> str:
        return Job.objects.values_list("celery_task_id", flat=True).get(pk=self.job.pk)

    # The broker ---------------------------------------------------------------------------

    @rule(target=runs, redelivered=st.booleans())
    @committed
    def deliver(self, redelivered: bool) -> Any:
        """The job's current message reaches a worker (``redelivered``: after a lost one)."""
        run = run_claim(job_id=str(self.job.pk), task_id=self._current_task_id(),
                        redelivered=redelivered)
        return multiple() if run is None else run

    @rule(pick=st.integers(min_value=0, max_value=20), redelivered=st.booleans())
    @committed
    def deliver_an_old_message(self, pick: int, redelivered: bool) -> None:
        """A message the reaper or a retry replaced turns up late: it never runs."""
        current = self._current_task_id()
        old = [t for t in self.task_ids if t != current]
        if old:
            assert run_claim(job_id=str(self.job.pk), task_id=old[pick % len(old)],
                             redelivered=redelivered) is None

    # A run, in its worker -------------------------------------------------------------------

    @rule(run=runs, current=st.integers(min_value=0, max_value=9))
    @committed
    def progress(self, run: Run, current: int) -> None:
        try:
            run.progress(current, 9, f"step {current}")
            run.flush()
        except JobSuperseded:
            pass

    @rule(run=runs)
    @committed
    def succeed(self, run: Run) -> None:
        run.succeed({"ok": True})

    @rule(run=runs)
    @committed
    def fail(self, run: Run) -> None:
        run.fail(RuntimeError("boom"))

    @rule(run=runs)
    @committed
    def retry_later(self, run: Run) -> None:
        """Celery's retry: the job shows retrying; the same task id comes back later."""
        run.retrying(ConnectionError("flaky"), timezone.now())

    @rule(run=runs)
    @committed
    def checkpoint(self, run: Run) -> None:
        run.last_check = 0.0
        try:
            run.checkpoint()
        except JobCancelled:
            run.cancel()
        except JobSuperseded:
            pass

    # The user and the reaper -------------------------------------------------------------

    @rule()
    @committed
    def cancel(self) -> None:
        try:
            job_cancel(job=Job.objects.get(pk=self.job.pk), actor=OWNER)
        except IllegalTransition:
            pass

    @rule()
    @committed
    def retry(self) -> None:
        try:
            job_retry(job=Job.objects.get(pk=self.job.pk), actor=OWNER)
        except IllegalTransition:
            pass

    @rule()
    @committed
    def reap(self) -> None:
        """The reaper, run late enough that every heartbeat and queued message is stale."""
        later = max(conf.JOB_HEARTBEAT_TIMEOUT, conf.JOB_QUEUED_TIMEOUT) + 1
        job_reap(now=timezone.now() + timedelta(seconds=later))

    # What must hold after every step -------------------------------------------------------

    @invariant()
    def the_table_holds(self) -> None:
        row = Job.objects.get(pk=self.job.pk)
        assert row.state == self.state or can_move(self.state, row.state), (
            f"{self.state} -> {row.state}")
        assert (row.finished_at is not None) == (row.state in TERMINAL), (
            f"{row.state} with finished_at={row.finished_at}")
        self.state = State(row.state)
        if row.celery_task_id not in self.task_ids:
            self.task_ids.append(row.celery_task_id)
        self._read_events()
        # Exactly one terminal event once the job is terminal (Redis is up here).
        assert (row.state in TERMINAL) == (not self.terminal_open), (
            f"{row.state}: terminal event {'missing' if self.terminal_open else 'extra'}")

    def _read_events(self) -> None:
        entries = sync_client().xrange(keys.log_key(self.job.topic), min=f"({self.read_up_to}")
        for sid, entry in entries:
            self.read_up_to = sid.decode()
            event, data = json.loads(entry[b"e"]), json.loads(entry[b"d"])
            if event not in STATE_EVENTS:
                continue
            if event in TERMINAL_EVENTS:
                assert self.terminal_open, f"a second terminal event: {event}"
                assert data["state"] == TERMINAL_EVENTS[event]
                assert data["finished_at"] is not None
                self.terminal_open = False
            elif event == "job.retrying" and data["state"] == State.QUEUED:
                self.terminal_open = True  # queued again: a new life
            else:
                assert data["state"] not in TERMINAL and data["finished_at"] is None


@pytest.fixture
def owner(db: Any, django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="owner", password="pw")


@pytest.fixture
def idle_queue() -> Any:
    yield QUEUE
    from example.celery import app

    with app.connection_for_write() as connection:
        channel = connection.default_channel
        try:
            channel.queue_delete(QUEUE)
        except Exception:  # the Redis transport keeps no queue object to delete
            channel.queue_purge(QUEUE)


@pytest.mark.timeout(600)  # a few tens of seconds on an idle machine; this one is shared
def test_random_lives_of_a_job_keep_the_table_and_one_terminal_event(owner: Any,
                                                                     idle_queue: str) -> None:
    global OWNER
    OWNER = owner
    run_state_machine_as_test(JobLife, settings=PROFILE)
