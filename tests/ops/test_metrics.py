"""``/metrics``: who may read it, and its counters summed over real worker processes."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import close_old_connections
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from taskstream.jobs import job_start
from taskstream.jobs.models import Job

TOKEN = "t" * 40


def scrape(client: Client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.content.decode())
            for s in family.samples}


@pytest.mark.django_db
def test_metrics_need_the_token_or_staff(django_user_model, settings):
    settings.TASKSTREAM = {**settings.TASKSTREAM, "METRICS_TOKEN": TOKEN}
    member = Client()
    member.force_login(django_user_model.objects.create_user(username="member"))
    staff = Client()
    staff.force_login(django_user_model.objects.create_user(username="boss", is_staff=True))
    assert Client().get("/metrics").status_code == 401
    assert Client().get("/metrics").json()["code"] == "unauthenticated"
    assert Client().get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert member.get("/metrics").status_code == 403
    assert member.get("/metrics").json()["code"] == "forbidden"
    assert Client().post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
                         ).status_code == 405
    by_token = scrape(Client(), Authorization=f"Bearer {TOKEN}")
    assert ("taskstream_outbox_backlog", ()) in by_token
    assert ("taskstream_hub_connections", ()) in scrape(staff)


@pytest.mark.django_db
def test_without_a_token_setting_a_bearer_is_refused(django_user_model):
    with override_settings(TASKSTREAM={"REDIS_URL": "redis://x", "METRICS_TOKEN": ""}):
        response = Client().get("/metrics", headers={"Authorization": "Bearer "})
        assert response.status_code == 401
        assert Client().get("/metrics", headers={"Authorization": "Bearer x" * 40}
                            ).status_code == 401


def wait_all(ids: list[Any], state: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while Job.objects.filter(pk__in=ids, state=state).count() < len(ids):
        assert time.monotonic() < deadline, list(Job.objects.filter(pk__in=ids)
                                                 .values_list("state", flat=True))
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_counters_move_as_jobs_run_summed_over_two_workers(make_user, start_worker,
                                                          tmp_path: Path, monkeypatch):
    """Each worker runs its own queue's jobs: a count from one process only would be half."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    queues = [f"metrics{secrets.token_hex(3)}" for _ in range(2)]
    workers = [start_worker(concurrency=1, CELERY_TASK_DEFAULT_QUEUE=q, LOG_FORMAT="json",
                            PROMETHEUS_MULTIPROC_DIR=str(tmp_path)) for q in queues]
    staff = Client()
    staff.force_login(make_user(is_staff=True))
    kind = (("kind", "demo.noop"),)
    try:
        before = scrape(staff)
        assert before.get(("taskstream_job_transitions_total",
                           (*kind, ("state", "succeeded"))), 0) == 0
        user = make_user()
        ids = [job_start(kind="demo.noop", owner=user, queue=q, params={"updates": 2}).pk
               for q in queues for _ in range(3)]
        wait_all(ids, "succeeded")
        # The counters move after the commit, a moment after the row: wait on the scrape.
        deadline = time.monotonic() + 15
        while True:
            after = scrape(staff)
            done = after.get(("taskstream_job_transitions_total",
                              (*kind, ("state", "succeeded"))), 0)
            if done >= 6 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert done == 6
        assert after[("taskstream_job_transitions_total", (*kind, ("state", "running")))] == 6
        assert after[("taskstream_job_duration_seconds_count", kind)] == 6
        assert after[("taskstream_jobs", (*kind, ("state", "succeeded")))] == 6
        assert after[("taskstream_events_published_total", ())] >= 12  # started + succeeded
        # Both workers' pool processes wrote their own files.
        pids = {p.stem.rsplit("_", 1)[-1] for p in tmp_path.glob("counter_*.db")}
        assert len(pids) >= 2
        # Logs: one JSON line per state change in the worker, with the job, task and user.
        job = Job.objects.get(pk=ids[0])
        lines = [json.loads(line) for line in workers[0].log.read_text().splitlines()
                 if line.startswith("{") and str(job.pk) in line]
        assert [(x["job_state"], x["task_id"], x["user_id"], x["logger"]) for x in lines] == [
            ("running", job.celery_task_id, user.pk, "taskstream.jobs"),
            ("succeeded", job.celery_task_id, user.pk, "taskstream.jobs")]
    finally:
        for worker in workers:
            worker.stop()
        close_old_connections()
