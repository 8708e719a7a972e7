"""A run's events: job.started at its claim, then always before anything after it."""

from __future__ import annotations

import json
import time

import pytest

from taskstream.hub import keys
from taskstream.hub.redis import sync_client
from taskstream.jobs import job_start
from taskstream.jobs.lifecycle import run_claim
from taskstream.jobs.ticker import ticker
from tests.jobs.conftest import IDLE_QUEUE

# Committed for real: a run publishes its events after its writes commit.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("idle_queue")]


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user(username="owner", password="pw")


def logged(topic: str, job_id: str) -> list[tuple[str, str]]:
    """(event, state) of the job's entries in a topic's log, oldest first."""
    out = []
    for _, entry in sync_client().xrange(keys.log_key(topic)):
        data = json.loads(entry[b"d"])
        if data.get("id") == job_id:
            out.append((json.loads(entry[b"e"]), data["state"]))
    return out


def test_a_short_job_sends_its_start_with_its_end_in_order(owner):
    job = job_start(kind="demo.slow", queue=IDLE_QUEUE, owner=owner, params={"steps": 1})
    run = run_claim(job_id=str(job.pk), task_id=job.celery_task_id, redelivered=False)
    assert run is not None
    run.interval = 3600  # no ticker here, and no progress event either
    run.progress(1, 1, "done")
    assert run.succeed({"ok": True})
    expected = [("job.created", "queued"), ("job.started", "running"),
                ("job.succeeded", "succeeded")]
    assert logged(job.topic, str(job.pk)) == expected
    assert logged(f"user:{owner.pk}", str(job.pk)) == expected


def test_a_running_job_sends_its_start_within_moments(owner):
    job = job_start(kind="demo.slow", queue=IDLE_QUEUE, owner=owner, params={"steps": 1})
    run = run_claim(job_id=str(job.pk), task_id=job.celery_task_id, redelivered=False)
    assert run is not None
    ticker.add(run)
    try:
        deadline = time.monotonic() + 5
        while ("job.started", "running") not in logged(job.topic, str(job.pk)):
            assert time.monotonic() < deadline, "job.started never sent"
            time.sleep(0.01)
    finally:
        ticker.remove(run)
    assert run.fail(RuntimeError("boom"))
    assert [e for e, _ in logged(job.topic, str(job.pk))] == ["job.created", "job.started",
                                                               "job.failed"]


def test_a_cancelled_claim_sends_no_start(owner):
    job = job_start(kind="demo.slow", queue=IDLE_QUEUE, owner=owner, params={"steps": 1})
    type(job).objects.filter(pk=job.pk).update(cancel_requested=True)
    run = run_claim(job_id=str(job.pk), task_id=job.celery_task_id, redelivered=False)
    assert run is not None and run.cancelled
    assert run.cancel()
    assert [e for e, _ in logged(job.topic, str(job.pk))] == ["job.created", "job.cancelled"]
