"""The run's hand-written statements store and read back exactly what the ORM would."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from taskstream.jobs import job_start
from taskstream.jobs.exceptions import JobSuperseded
from taskstream.jobs.lifecycle import run_claim
from taskstream.jobs.models import Job
from taskstream.jobs.snapshot import job_snapshot
from taskstream.jobs.states import State

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user(username="owner", password="pw")


def fields(job: Job) -> dict[str, object]:
    return {f.attname: getattr(job, f.attname) for f in Job._meta.concrete_fields}


def test_claim_returns_the_row_as_stored(owner):
    parent = job_start(kind="demo.slow", owner=owner, params={"steps": 1})
    job = job_start(kind="demo.slow", owner=owner, params={"steps": 2, "step_seconds": 0},
                    parent=parent, idempotency_key="k1")
    run = run_claim(job_id=str(job.pk), task_id=job.celery_task_id, redelivered=False)
    assert run is not None
    stored = Job.objects.get(pk=job.pk)
    assert fields(run.job) == fields(stored)
    assert job_snapshot(run.job) == job_snapshot(stored)
    assert run.job.state == State.RUNNING and run.job.attempt == 1
    assert run.job.params == {"steps": 2, "step_seconds": 0}
    assert run.job.owner == owner and run.job.parent_id == parent.pk


def test_claim_takes_only_takeable_jobs(owner):
    job = job_start(kind="demo.slow", owner=owner, params={"steps": 1})
    first = run_claim(job_id=str(job.pk), task_id=job.celery_task_id, redelivered=False)
    assert first is not None
    # Held by a live run: neither a second delivery nor one without `redelivered` takes it.
    assert run_claim(job_id=str(job.pk), task_id="another", redelivered=True) is None
    assert run_claim(job_id=str(job.pk), task_id=job.celery_task_id, redelivered=False) is None
    # Its own message redelivered (the worker was lost) takes it over: a new run.
    again = run_claim(job_id=str(job.pk), task_id=job.celery_task_id, redelivered=True)
    assert again is not None and again.token != first.token and again.job.attempt == 2
    assert again.job.started_at == first.job.started_at  # the first start is kept
    # A stale heartbeat lets the job's current message take it, never another one.
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert run_claim(job_id=str(job.pk), task_id="t3", redelivered=False) is None
    third = run_claim(job_id=str(job.pk), task_id=job.celery_task_id, redelivered=False)
    assert third is not None and third.job.attempt == 3
    first.interval = 0  # flush inline (no ticker here): the write finds the job taken
    with pytest.raises(JobSuperseded):
        first.progress(1, 2, "")
    assert Job.objects.get(pk=job.pk).progress_current == 0


def test_finish_writes_result_and_progress(owner):
    job = job_start(kind="demo.slow", owner=owner, params={"steps": 1})
    run = run_claim(job_id=str(job.pk), task_id=job.celery_task_id, redelivered=False)
    assert run is not None
    run.interval = 3600  # hold every value back: the last one rides on the final write
    run.progress(7, 9, "almost")
    assert run.succeed({"rows": [1, 2], "when": timezone.now()})
    stored = Job.objects.get(pk=job.pk)
    assert fields(run.job) | {"result": stored.result} == fields(stored)
    assert stored.state == State.SUCCEEDED and stored.run_token == ""
    assert (stored.progress_current, stored.progress_total, stored.progress_message) == (
        7, 9, "almost")
    assert stored.result["rows"] == [1, 2] and stored.heartbeat_at is None
    assert not run.fail(RuntimeError("late"))  # completes once
