"""Services and run transitions against the real database and Redis (no worker)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from taskstream.conf import conf
from taskstream.hub.cursors_api import latest_cursor
from taskstream.jobs import job_cancel, job_retry, job_start
from taskstream.jobs.exceptions import (
    IdempotencyConflict,
    IllegalTransition,
    InvalidJobParams,
    JobNotAllowed,
    UnknownJobKind,
)
from taskstream.jobs.lifecycle import run_claim
from taskstream.jobs.models import Job
from taskstream.jobs.services import job_reap
from taskstream.jobs.states import State
from tests.jobs.conftest import IDLE_QUEUE

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("idle_queue")]


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user(username="owner", password="pw")


@pytest.fixture
def other(django_user_model):
    return django_user_model.objects.create_user(username="other", password="pw")


def start(owner, **kw):
    kw.setdefault("queue", IDLE_QUEUE)  # this test claims it, not the suite's worker
    kw.setdefault("kind", "demo.slow")
    kw.setdefault("params", {"steps": 2, "step_seconds": 0})
    return job_start(owner=owner, **kw)


def claim(job, redelivered=False):
    job.refresh_from_db()
    return run_claim(job_id=str(job.pk), task_id=job.celery_task_id, redelivered=redelivered)


def test_start_creates_a_queued_job_with_validated_params(owner):
    job = start(owner, params={"steps": 3})
    assert job.state == State.QUEUED and job.attempt == 0
    assert job.params == {"steps": 3, "step_seconds": 0.3}  # the kind's defaults filled in
    assert job.celery_task_id


def test_start_refuses_unknown_kinds_and_bad_params(owner):
    with pytest.raises(UnknownJobKind):
        start(owner, kind="no.such.task")
    with pytest.raises(UnknownJobKind):
        start(owner, kind="taskstream.jobs.reap")  # a task, but not a LiveTask
    with pytest.raises(InvalidJobParams) as info:
        start(owner, params={"steps": 0})
    assert info.value.errors[0]["loc"] == ["steps"]
    with pytest.raises(InvalidJobParams):
        start(owner, params={"steps": 1, "surprise": True})
    assert not Job.objects.exists()


def test_idempotency_key_returns_the_same_job_per_owner(owner, other):
    first = start(owner, idempotency_key="k1")
    assert start(owner, idempotency_key="k1").pk == first.pk
    assert start(other, idempotency_key="k1").pk != first.pk  # keys are per owner
    with pytest.raises(IdempotencyConflict):
        start(owner, idempotency_key="k1", params={"steps": 5})
    assert Job.objects.filter(owner=owner).count() == 1


def test_a_run_claims_once_and_completes_once(owner):
    job = start(owner)
    run = claim(job)
    assert run is not None and run.job.state == State.RUNNING and run.job.attempt == 1
    assert claim(job) is None  # a duplicate delivery while the run is alive does nothing
    assert run.succeed({"ok": True})
    assert not run.succeed({"ok": "again"})  # the second completion writes nothing
    job.refresh_from_db()
    assert job.state == State.SUCCEEDED and job.result == {"ok": True}
    assert claim(job, redelivered=True) is None  # a finished job never runs again


def test_redelivered_message_takes_over_and_the_old_run_cannot_finish(owner):
    job = start(owner)
    first = claim(job)
    second = claim(job, redelivered=True)  # the worker was lost, the broker redelivered
    assert second is not None and second.job.attempt == 2
    assert not first.succeed("stale")
    assert second.succeed("fresh")
    job.refresh_from_db()
    assert job.result == "fresh"


@pytest.mark.django_db(transaction=True)
def test_terminal_events_are_published_once(owner):
    job = start(owner)
    run = claim(job)
    before = latest_cursor(job.topic)
    run.succeed(1)
    after = latest_cursor(job.topic)
    run.succeed(2)
    run.fail(RuntimeError("late"))
    assert before != after and latest_cursor(job.topic) == after


def test_progress_is_stored_and_unserializable_results_fail_the_job(owner):
    job = start(owner)
    run = claim(job)
    run.progress(3, 4, "three")
    run.flush()
    job.refresh_from_db()
    assert (job.progress_current, job.progress_total, job.progress_message) == (3, 4, "three")
    assert run.succeed(object())
    job.refresh_from_db()
    assert job.state == State.FAILED and job.error_type == "TypeError"


def test_cancel_of_a_queued_job_finishes_it_and_its_run_never_starts(owner):
    job = start(owner)
    job_cancel(job=job, actor=owner)
    job.refresh_from_db()
    assert job.state == State.CANCELLED and job.finished_at is not None
    assert claim(job) is None
    with pytest.raises(IllegalTransition):
        job_cancel(job=job, actor=owner)


def test_cancel_of_a_running_job_is_requested_and_seen_at_checkpoint(owner):
    from taskstream.jobs.exceptions import JobCancelled

    job = start(owner)
    run = claim(job)
    job_cancel(job=job, actor=owner)
    job.refresh_from_db()
    assert job.state == State.RUNNING and job.cancel_requested
    run.last_check = 0.0
    with pytest.raises(JobCancelled):
        run.checkpoint()
    assert run.cancel()
    job.refresh_from_db()
    assert job.state == State.CANCELLED


def test_only_owner_or_staff_may_cancel_or_retry(owner, other, django_user_model):
    job = start(owner)
    with pytest.raises(JobNotAllowed):
        job_cancel(job=job, actor=other)
    staff = django_user_model.objects.create_user(username="staff", is_staff=True)
    job_cancel(job=job, actor=staff)
    with pytest.raises(JobNotAllowed):
        job_retry(job=job, actor=other)


def test_retry_queues_a_failed_job_again_and_refuses_others(owner):
    job = start(owner)
    with pytest.raises(IllegalTransition):
        job_retry(job=job, actor=owner)
    run = claim(job)
    run.fail(ValueError("boom"))
    old_task = Job.objects.get(pk=job.pk).celery_task_id
    job_retry(job=job, actor=owner)
    job.refresh_from_db()
    assert job.state == State.QUEUED and job.error_type == "" and job.celery_task_id != old_task
    again = claim(job)
    assert again is not None and again.job.attempt == 2


def test_reaper_requeues_a_running_job_whose_heartbeat_stopped(owner):
    live, dead = start(owner), start(owner)
    claim(live)
    claim(dead)
    long_ago = timezone.now() - timedelta(hours=1)
    Job.objects.filter(pk=dead.pk).update(heartbeat_at=long_ago)
    old_task = Job.objects.get(pk=dead.pk).celery_task_id
    assert job_reap() == 1
    dead.refresh_from_db()
    live.refresh_from_db()
    assert live.state == State.RUNNING
    assert dead.state == State.RETRYING and dead.error_type == "WorkerLost"
    assert dead.celery_task_id != old_task
    assert job_reap() == 0  # once
    run = claim(dead)
    assert run is not None and run.job.attempt == 2


def test_reaper_sends_again_a_queued_job_whose_message_is_gone(owner):
    job = start(owner)
    old_task = job.celery_task_id
    assert job_reap() == 0  # just queued: its message is on its way
    later = timezone.now() + timedelta(seconds=conf.JOB_QUEUED_TIMEOUT + 1)
    assert job_reap(now=later) == 1
    job.refresh_from_db()
    assert job.state == State.QUEUED and job.celery_task_id != old_task
    assert job_reap(now=later) == 0  # once: the new message gets its own time
    # The old message, should it turn up, never runs: only the current one claims.
    assert run_claim(job_id=str(job.pk), task_id=old_task, redelivered=True) is None
    run = claim(job)
    assert run is not None and run.job.attempt == 1


def test_reaper_leaves_jobs_without_a_task_of_their_own(owner):
    long_ago = timezone.now() - timedelta(hours=1)
    parent = Job.objects.create(owner=owner, kind="pipelines.parent", state=State.RUNNING,
                                heartbeat_at=long_ago)
    assert job_reap() == 0
    parent.refresh_from_db()
    assert parent.state == State.RUNNING


@pytest.mark.django_db(transaction=True)
def test_a_result_too_big_for_an_event_still_gets_its_terminal_event(owner, settings):
    settings.TASKSTREAM = {**settings.TASKSTREAM, "MAX_EVENT_BYTES": 2048}
    job = start(owner)
    run = claim(job)
    before = latest_cursor(job.topic)
    assert run.succeed({"blob": "x" * 5000})
    assert latest_cursor(job.topic) != before
    job.refresh_from_db()
    assert job.result == {"blob": "x" * 5000}  # stored whole; the API serves it


def test_a_move_the_table_forbids_raises_and_writes_nothing(owner):
    from taskstream.jobs import job_move

    job = start(owner)
    run = claim(job)
    assert run.succeed({"ok": 1})
    job.refresh_from_db()
    before = {f.attname: getattr(job, f.attname) for f in Job._meta.concrete_fields}
    for target in (State.RUNNING, State.RETRYING, State.FAILED, State.CANCELLED):
        with pytest.raises(IllegalTransition, match=f"a succeeded job cannot become {target}"):
            job_move(job=job, target=target)
    # Asking for a source the table does not have is refused before any query.
    with pytest.raises(IllegalTransition):
        job_move(job=job, target=State.SUCCEEDED, only_from=[State.QUEUED])
    job.refresh_from_db()
    assert {f.attname: getattr(job, f.attname) for f in Job._meta.concrete_fields} == before
