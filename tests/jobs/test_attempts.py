"""A job's attempts come from its topic's log: what the log no longer has is said, not hidden."""

from __future__ import annotations

import pytest

from taskstream.jobs import job_start
from taskstream.jobs.models import Job
from taskstream.jobs.selectors import job_attempts
from tests.jobs.conftest import IDLE_QUEUE

pytestmark = pytest.mark.django_db(transaction=True)  # job.created is published on commit


def test_a_job_that_never_ran_has_no_attempts_and_nothing_missing(django_user_model):
    job = job_start(
        kind="demo.slow",
        queue=IDLE_QUEUE,
        owner=django_user_model.objects.create_user(username="a"),
    )
    found = job_attempts(job=job)
    assert found.attempts == [] and found.complete is True


def test_runs_the_log_lost_make_the_history_incomplete(django_user_model):
    job = job_start(
        kind="demo.slow",
        queue=IDLE_QUEUE,
        owner=django_user_model.objects.create_user(username="a"),
    )
    # Two runs as the row records them, whose events the log no longer holds (e.g. Redis
    # restarted without its data).
    Job.objects.filter(pk=job.pk).update(attempt=2, state="failed")
    job.refresh_from_db()
    found = job_attempts(job=job)
    assert found.attempts == [] and found.complete is False
