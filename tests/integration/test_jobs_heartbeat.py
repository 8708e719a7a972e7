"""Every job of a worker process heartbeats and gets its held-back progress out.

The shared worker's reaper (``celery_worker``, heartbeat timeout 3 s) would re-queue a
running job whose heartbeat stopped, so a job that sleeps past the timeout without
reporting progress finishes in one attempt only if its process kept beating for it. The
second job of a process is the case that matters: the process's ticker thread had gone
to sleep with no runs when the first one ended.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

import pytest
from django.db import close_old_connections

from taskstream.jobs import job_start
from taskstream.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


def wait_for(job_id: str, ok: Callable[[Job], bool], timeout: float = 30.0) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        job = Job.objects.get(pk=job_id)
        if ok(job):
            return job
        assert time.monotonic() < deadline, f"job is {job.state}: {job.progress_message!r}"
        time.sleep(0.05)


def test_a_later_job_of_a_worker_process_heartbeats(make_user, start_worker):
    queue = f"beat{secrets.token_hex(3)}"
    worker = start_worker(concurrency=1, CELERY_TASK_DEFAULT_QUEUE=queue)
    user = make_user()
    try:
        first = job_start(kind="demo.noop", owner=user, queue=queue, params={"updates": 3})
        wait_for(str(first.pk), lambda j: j.state == "succeeded")
        # Reports progress once, right after its start (held back by the rate limit),
        # then blocks for longer than the heartbeat timeout.
        job = job_start(kind="demo.blocking", owner=user, queue=queue,
                        params={"seconds": 4.5})
        running = wait_for(str(job.pk), lambda j: j.state == "running")
        beating = wait_for(str(job.pk), lambda j: j.progress_message == "blocking"
                           and j.heartbeat_at is not None and running.heartbeat_at is not None
                           and j.heartbeat_at > running.heartbeat_at, timeout=3)
        assert beating.state == "running"
        done = wait_for(str(job.pk), lambda j: j.state in ("succeeded", "failed"))
        assert done.state == "succeeded" and done.attempt == 1  # never taken for lost
    finally:
        worker.stop()
        close_old_connections()
