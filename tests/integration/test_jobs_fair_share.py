"""One user cannot take every worker (``JOB_MAX_RUNNING_PER_USER``), under a real worker.

User A starts three long jobs, then user B one, on a worker with two slots and a limit of
one running job per user. A's second and third claims wait (their messages come back a
little later) instead of filling the second slot, so B's job starts while A's first is
still running; A's jobs run one after another; all four finish once, each in one run.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Callable
from typing import Any

import pytest

from taskstream.jobs import job_start
from taskstream.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True)]


def wait_until(check: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def test_one_user_does_not_hold_every_worker_slot(start_worker: Any, make_user: Any) -> None:
    queue = f"fair{secrets.token_hex(3)}"
    worker = start_worker(concurrency=2, CELERY_TASK_DEFAULT_QUEUE=queue,
                          taskstream={"JOB_MAX_RUNNING_PER_USER": 1})
    a, b = make_user(), make_user()
    long = {"steps": 40, "step_seconds": 0.1}  # ~4 s: B is claimed well within it
    try:
        a_jobs = [job_start(kind="demo.slow", owner=a, queue=queue, params=long)
                  for _ in range(3)]
        wait_until(lambda: Job.objects.filter(owner=a, state="running").exists(),
                   "one of A's jobs to run")
        b_job = job_start(kind="demo.slow", owner=b, queue=queue,
                          params={"steps": 1, "step_seconds": 0})
        every = [*a_jobs, b_job]
        wait_until(lambda: Job.objects.filter(pk__in=[j.pk for j in every],
                                              state="succeeded").count() == 4,
                   "all four jobs to succeed", timeout=120)
    finally:
        worker.stop()
    for job in every:
        job.refresh_from_db()
        assert (job.state, job.attempt) == ("succeeded", 1), (job.error_type,
                                                              job.error_message)
    # B's job started (and even finished) before any of A's had finished: it did not wait
    # for A to give a slot back.
    assert b_job.finished_at < min(j.finished_at for j in a_jobs)
    # A never ran two jobs at once: each of A's runs began after the previous one ended.
    runs = sorted((j.started_at, j.finished_at) for j in a_jobs)
    for (_, ended), (began, _) in itertools.pairwise(runs):
        assert began >= ended
