"""Eager runs (CELERY_TASK_ALWAYS_EAGER, ``task.apply()``) of LiveTask jobs: the job goes
through its states, progress and checkpoints work and their events are published.

They run on every supported Celery: ``nox -s "tests-3.11(deps='oldest')" -- tests/jobs/
test_eager.py`` runs them on pyproject's lower bounds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import shared_task

from taskstream.hub import keys
from taskstream.hub.redis import sync_client
from taskstream.jobs import LiveTask, job_cancel, job_create, job_start, job_task_kwargs
from taskstream.jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)


class Planned(RuntimeError):
    """A test job's planned failure."""


def _wait(condition: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


@shared_task(base=LiveTask, bind=True, name="tests.eager.halfway")
def halfway(self: LiveTask, *, total: int = 2) -> dict[str, int]:
    """Reports half, waits until that value is written (so its event went out), ends."""
    self.progress(1, total, "half")
    job_id = self.job.pk
    _wait(lambda: Job.objects.get(pk=job_id).progress_current == 1, "progress never written")
    self.checkpoint()
    self.progress(total, total, "done")
    return {"total": total}


@shared_task(base=LiveTask, bind=True, name="tests.eager.cancels_itself")
def cancels_itself(self: LiveTask) -> str:
    job_cancel(job=Job.objects.get(pk=self.job.pk))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        self.checkpoint()  # raises JobCancelled once it sees the request
        time.sleep(0.01)
    return "checkpoint never raised"


@shared_task(base=LiveTask, bind=True, name="tests.eager.flaky", autoretry_for=(Planned,),
             retry_backoff=30, max_retries=2)
def flaky(self: LiveTask, *, fail_times: int) -> int:
    attempt: int = self.job.attempt
    self.progress(attempt, 3, f"attempt {attempt}")
    if attempt <= fail_times:
        raise Planned(f"planned failure {attempt}")
    return attempt


@shared_task(base=LiveTask, bind=True, name="tests.eager.retries_with_new_kwargs")
def retries_with_new_kwargs(self: LiveTask, *, value: int) -> int:
    if self.job.attempt == 1:
        raise self.retry(kwargs={"value": value + 1}, exc=Planned("first"), countdown=60)
    return value


@shared_task(base=LiveTask, bind=True, name="tests.eager.counts")
def counts(self: LiveTask, *, upto: int) -> int:
    for i in range(1, upto + 1):
        self.checkpoint()
        self.progress(i, upto)
    return upto


@shared_task(base=LiveTask, bind=True, name="tests.eager.fails")
def fails(self: LiveTask) -> None:
    raise Planned("the job's own error")


@pytest.fixture
def eager() -> Iterator[Any]:
    from celery import current_app

    conf = current_app.conf
    before = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager, conf.task_eager_propagates = True, False
    yield conf
    conf.task_always_eager, conf.task_eager_propagates = before


@pytest.fixture
def owner(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="eager-owner", password="pw")


def events_of(job: Job) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) in the job's topic log, oldest first."""
    return [(json.loads(entry[b"e"]), json.loads(entry[b"d"]))
            for _, entry in sync_client().xrange(keys.log_key(f"job:{job.pk}"))]


def test_an_eager_job_succeeds_with_its_progress_events(eager: Any, owner: Any) -> None:
    job = job_start(kind="tests.eager.halfway", owner=owner, params={"total": 4})
    job.refresh_from_db()
    assert (job.state, job.result, job.attempt) == ("succeeded", {"total": 4}, 1)
    assert (job.progress_current, job.progress_total, job.progress_message) == (4, 4, "done")
    names = [event for event, _ in events_of(job)]
    assert names[:2] == ["job.created", "job.started"] and names[-1] == "job.succeeded"
    progress = [data["progress"] for event, data in events_of(job) if event == "job.progress"]
    assert progress and progress[0]["current"] == 1 and progress[0]["message"] == "half"
    # The user's topic gets the same events. (Only this job's: a user id can come back in a
    # later test, after an earlier one's rolled-back user, and its topic's log with it.)
    user_log = sync_client().xrange(keys.log_key(f"user:{owner.pk}"))
    assert [json.loads(e[b"e"]) for _, e in user_log
            if json.loads(e[b"d"]).get("id") == str(job.pk)] == names


def test_an_eager_auto_retry_ends_succeeded_not_retrying(eager: Any, owner: Any) -> None:
    job = job_start(kind="tests.eager.flaky", owner=owner, params={"fail_times": 1})
    job.refresh_from_db()
    assert (job.state, job.attempt, job.result) == ("succeeded", 2, 2)
    assert job.error_message == ""
    assert [event for event, _ in events_of(job)] == [
        "job.created", "job.started", "job.retrying", "job.started", "job.succeeded"]


def test_a_retry_with_new_keywords_still_runs_as_its_job(eager: Any, owner: Any) -> None:
    job = job_start(kind="tests.eager.retries_with_new_kwargs", owner=owner,
                    params={"value": 1})
    job.refresh_from_db()
    assert (job.state, job.attempt, job.result) == ("succeeded", 2, 2)


def test_an_eager_job_out_of_retries_fails(eager: Any, owner: Any) -> None:
    job = job_start(kind="tests.eager.flaky", owner=owner, params={"fail_times": 5})
    job.refresh_from_db()
    assert (job.state, job.attempt) == ("failed", 3)  # the first run and max_retries=2
    assert (job.error_type, job.error_message) == ("Planned", "planned failure 3")
    assert [event for event, _ in events_of(job)][-1] == "job.failed"


def test_an_eager_job_that_raises_fails_and_propagates_when_asked(eager: Any,
                                                                   owner: Any) -> None:
    job = job_start(kind="tests.eager.fails", owner=owner)
    job.refresh_from_db()
    assert (job.state, job.error_message) == ("failed", "the job's own error")

    eager.task_eager_propagates = True
    with pytest.raises(Planned, match="the job's own error"):
        job_start(kind="tests.eager.fails", owner=owner)
    last = Job.objects.filter(owner=owner).order_by("-created_at").first()
    assert last is not None and last.pk != job.pk and last.state == "failed"


def test_an_eager_checkpoint_sees_the_cancel(eager: Any, owner: Any) -> None:
    job = job_start(kind="tests.eager.cancels_itself", owner=owner)
    job.refresh_from_db()
    assert job.state == "cancelled"
    assert [event for event, _ in events_of(job)][-1] == "job.cancelled"


def test_apply_runs_a_created_job_through_its_states(owner: Any) -> None:
    """No eager setting: ``task.apply()`` with the job's keyword arguments and task id."""
    job = job_create(kind="tests.eager.flaky", owner=owner, params={"fail_times": 1})
    result = flaky.apply(kwargs=job_task_kwargs(job.pk, job.params), task_id=job.celery_task_id)
    assert result.get() == 2
    job.refresh_from_db()
    assert (job.state, job.attempt) == ("succeeded", 2)


def test_apply_without_a_job_is_a_plain_call() -> None:
    """Without the job's keyword the task runs as a plain task: progress and checkpoints
    do nothing, and no job row is touched."""
    assert counts.apply(kwargs={"upto": 3}).get() == 3
    assert not Job.objects.exists()
