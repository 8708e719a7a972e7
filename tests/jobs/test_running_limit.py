"""The claim holds a top-level job back while its owner runs ``JOB_MAX_RUNNING_PER_USER``.

Against the real database, through the claim a worker makes (``run_claim``): over the
limit the claim raises :class:`OwnerBusy` and writes nothing (the task sends its message
again); other users, canvas children and a take-over of a running job are never held back.
The worker-level behaviour (a freed slot serves another user) is
tests/integration/test_jobs_fair_share.py.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, connections, transaction
from django.test import override_settings

from taskstream.jobs import job_start
from taskstream.jobs.exceptions import OwnerBusy
from taskstream.jobs.lifecycle import run_claim
from taskstream.jobs.models import Job
from taskstream.jobs.services import job_create
from tests.jobs.conftest import IDLE_QUEUE

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("idle_queue")]

LIMIT_ONE = override_settings(TASKSTREAM={"JOB_MAX_RUNNING_PER_USER": 1})


def claim(job: Job, *, redelivered: bool = False) -> Any:
    return run_claim(job_id=str(job.pk), task_id=job.celery_task_id, redelivered=redelivered)


@LIMIT_ONE
def test_a_claim_over_the_owners_limit_waits_and_writes_nothing(django_user_model: Any) -> None:
    a = django_user_model.objects.create_user(username="a")
    b = django_user_model.objects.create_user(username="b")
    first, second = (job_start(kind="demo.slow", queue=IDLE_QUEUE, owner=a) for _ in range(2))
    assert claim(first) is not None
    with pytest.raises(OwnerBusy):
        claim(second)
    second.refresh_from_db()
    assert (second.state, second.attempt, second.run_token) == ("queued", 0, "")
    # Another user's job is not held back by A's.
    assert claim(job_start(kind="demo.slow", queue=IDLE_QUEUE, owner=b)) is not None
    # A's run ends: A's next job may start.
    Job.objects.filter(pk=first.pk).update(state="succeeded")
    assert claim(second) is not None


@LIMIT_ONE
def test_children_and_take_overs_are_never_held_back(django_user_model: Any) -> None:
    a = django_user_model.objects.create_user(username="a")
    running = job_start(kind="demo.slow", queue=IDLE_QUEUE, owner=a)
    assert claim(running) is not None
    # A canvas step of A's runs although A is at the limit (its parent holds A's place).
    child = job_create(kind="demo.slow", owner=a, parent=running)
    Job.objects.filter(pk=child.pk).update(celery_task_id="child-task")
    child.refresh_from_db()
    assert claim(child) is not None
    # The running job's own message delivered again (its worker was lost) takes it over.
    running.refresh_from_db()
    assert claim(running, redelivered=True) is not None


@LIMIT_ONE
def test_a_message_that_is_not_the_jobs_current_one_is_dropped_not_held(
        django_user_model: Any) -> None:
    a = django_user_model.objects.create_user(username="a")
    first, second = (job_start(kind="demo.slow", queue=IDLE_QUEUE, owner=a) for _ in range(2))
    assert claim(first) is not None
    assert run_claim(job_id=str(second.pk), task_id="an-old-message",
                     redelivered=False) is None


@LIMIT_ONE
def test_two_claims_of_one_owner_at_once_start_one_on_postgresql(
        django_user_model: Any) -> None:
    """Under READ COMMITTED each claim's count would miss the other's uncommitted run: the
    owner's claims take turns, so the second sees the first once it commits."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite runs one writer at a time (make test-services)")
    a = django_user_model.objects.create_user(username="a")
    first, second = (job_start(kind="demo.slow", queue=IDLE_QUEUE, owner=a) for _ in range(2))
    claimed, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def hold_first() -> None:
        try:
            with transaction.atomic():  # the first claim made, not yet committed
                outcome["first"] = claim(first)
                claimed.set()
                release.wait(60)
        finally:
            connections.close_all()

    def claim_second() -> None:
        try:
            outcome["second"] = claim(second)
        except OwnerBusy as exc:
            outcome["second"] = exc
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_first)
    holder.start()
    assert claimed.wait(60)
    other = threading.Thread(target=claim_second)
    other.start()

    def second_waits_or_done() -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                           "AND classid = 29779 "
                           "AND NOT granted")
            return bool(cursor.fetchone()[0]) or not other.is_alive()

    deadline = time.monotonic() + 60
    while not second_waits_or_done():
        assert time.monotonic() < deadline, "the second claim neither waited nor ended"
        time.sleep(0.02)
    release.set()
    holder.join(60)
    other.join(60)
    assert outcome["first"] is not None
    assert isinstance(outcome["second"], OwnerBusy), outcome["second"]
    assert Job.objects.filter(owner=a, state="running").count() == 1
