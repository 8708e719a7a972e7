"""The workers, queues, jobs and periodic pages: staff only everywhere, filters, purge
(confirmed, CSRF, audited), and the workers a real Celery worker makes appear."""

from __future__ import annotations

import json
import re
import secrets
import uuid
from datetime import datetime, timedelta

import pytest
from celery import current_app
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from taskstream.api import api
from taskstream.jobs import job_start
from taskstream.jobs.models import Job
from taskstream.ops.broker import queue_infos
from taskstream.ops.models import AuditRecord
from taskstream.ops.queues import queue_depths

pytestmark = pytest.mark.django_db(transaction=True)  # enqueues happen on commit


def _ops_page_paths(job_id: str) -> list[str]:
    """Every page the site mounts under /ops/, with its parameters filled in."""
    found: list[str] = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif route.startswith("ops/"):
                found.append("/" + route.replace("<uuid:job_id>", job_id)
                             .replace("<slug:action>", "retry"))

    walk(get_resolver().url_patterns, "")
    return found


def _ops_api_calls(job_id: str) -> list[tuple[str, str]]:
    """Every (method, path) of the API under /api/ops/, from its OpenAPI schema."""
    schema = api.get_openapi_schema()
    calls = []
    for path, methods in schema["paths"].items():
        if path.startswith("/api/ops/"):
            filled = path.replace("{job_id}", job_id).replace("{name}", "celery")
            calls += [(method.upper(), filled) for method in methods]
    return calls


def test_every_ops_page_and_api_call_refuses_non_staff(make_user):
    owner = make_user()
    job = Job.objects.create(kind="demo.slow", owner=owner, state="failed")
    pages = _ops_page_paths(str(job.pk))
    calls = _ops_api_calls(str(job.pk))
    # The pages and calls this helper added are among them (the walk found the routes).
    assert {"/ops/workers/", "/ops/queues/", "/ops/queues/purge/", "/ops/jobs/",
            "/ops/periodic/"} <= set(pages)
    assert {("GET", "/api/ops/workers/"), ("GET", "/api/ops/queues/"),
            ("POST", "/api/ops/queues/celery/purge/"), ("GET", "/api/ops/jobs/")} <= set(calls)
    member = Client()
    member.force_login(make_user())
    for path in pages:
        for method in ("get", "post"):
            status = getattr(member, method)(path, {"queue": "celery", "kind": "demo.slow"})
            assert status.status_code in (403, 404, 405), (method, path, status.status_code)
        assert Client().get(path).status_code == 302, path  # to the login page
    for method, path in calls:
        body = json.dumps({"kind": "demo.slow"})
        got = member.generic(method, path, body, content_type="application/json")
        assert got.status_code == 403 and got.json()["code"] == "forbidden", (method, path)
        assert Client().generic(method, path, body,
                                content_type="application/json").status_code == 401
    assert Job.objects.get(pk=job.pk).state == "failed"
    assert not AuditRecord.objects.exists()


@pytest.fixture
def staff(make_user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user(username="boss", is_staff=True))
    return client


def test_jobs_page_searches_and_filters(make_user, staff):
    ann, bob = make_user(username="ann"), make_user(username="bob")
    now = timezone.now()
    old = Job.objects.create(kind="demo.slow", owner=ann, state="succeeded")
    Job.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=3))
    failed = Job.objects.create(kind="demo.fail", owner=bob, state="failed",
                                error_type="ValueError", error_message="bad row 7",
                                finished_at=now)
    running = Job.objects.create(kind="demo.slow", owner=bob, state="running")

    def rows(query: str) -> set[str]:
        page = staff.get("/ops/jobs/" + query)
        assert page.status_code == 200, page.content
        return set(re.findall(r'data-job-id="([0-9a-f-]{36})"', page.content.decode()))

    assert rows("") == {str(old.pk), str(failed.pk), str(running.pk)}
    assert rows("?kind=demo.slow") == {str(old.pk), str(running.pk)}
    assert rows("?state=failed") == {str(failed.pk)}
    assert rows("?owner=bob") == {str(failed.pk), str(running.pk)}
    since = (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    assert rows(f"?since={since}") == {str(failed.pk), str(running.pk)}
    assert rows(f"?until={since}") == {str(old.pk)}
    assert rows("?q=bad+row") == {str(failed.pk)}
    assert rows(f"?q={failed.pk}") == {str(failed.pk)}
    assert rows("?kind=demo.slow&owner=ann&state=succeeded") == {str(old.pk)}
    page = staff.get("/ops/jobs/?kind=demo.fail&state=failed").content.decode()
    assert f'href="/jobs/{failed.pk}/"' in page  # the job's page, with its audit records
    assert "/ops/failures/retry/?kind=demo.fail" in page  # retry all failed of the kind
    assert staff.get("/ops/jobs/?state=nonsense").status_code == 400
    assert staff.get("/ops/jobs/?since=yesterday").status_code == 400

    data = staff.get("/api/ops/jobs/", {"owner": "bob", "state": "failed"}).json()
    assert data["count"] == 1 and data["items"][0]["id"] == str(failed.pk)
    assert data["items"][0]["error_type"] == "ValueError"
    assert staff.get("/api/ops/jobs/?state=nonsense").status_code == 422


def test_jobs_page_pages(make_user, staff):
    owner = make_user()
    Job.objects.bulk_create([Job(kind="demo.noop", owner=owner, state="succeeded")
                             for _ in range(55)])
    first = staff.get("/ops/jobs/?kind=demo.noop").content.decode()
    assert "Page 1 of 2" in first and 'href="?kind=demo.noop&amp;page=2"' in first
    second = staff.get("/ops/jobs/?kind=demo.noop&page=2").content.decode()
    assert len(re.findall(r'data-job-id="', second)) == 5 and "Page 2 of 2" in second


def test_queues_page_shows_depth_and_age_and_purge_is_confirmed_and_audited(make_user, staff):
    queue = f"purge{secrets.token_hex(4)}"
    owner = make_user()
    try:
        jobs = [job_start(kind="demo.noop", owner=owner, queue=queue) for _ in range(3)]
        page = staff.get("/ops/queues/").content.decode()
        row = re.search(rf'<tr data-queue="{queue}">.*?</tr>', page, re.S)
        assert row is not None, page
        assert 'data-field="depth">3<' in row.group(0) and " s<" in row.group(0)
        listed = {q["name"]: q for q in staff.get("/api/ops/queues/").json()}
        assert listed[queue]["depth"] == 3 and 0 <= listed[queue]["oldest_age"] < 600

        confirm = staff.get("/ops/queues/purge/", {"queue": queue})
        assert confirm.status_code == 200 and "3 messages wait there" in confirm.content.decode()
        assert queue_depths([queue]) == {queue: 3}  # a GET does nothing
        assert staff.post("/ops/queues/purge/", {"queue": queue}).status_code == 403  # no CSRF
        assert queue_depths([queue]) == {queue: 3}
        token = str(confirm.context["csrf_token"])
        done = staff.post("/ops/queues/purge/", {"queue": queue, "csrfmiddlewaretoken": token})
        assert done.status_code == 302 and done["Location"] == "/ops/queues/"
        assert queue_depths([queue]) == {queue: 0}
        # The reaper would send the jobs again: they are cancelled instead.
        assert {j.state for j in Job.objects.filter(pk__in=[j.pk for j in jobs])} == {
            "cancelled"}
        record = AuditRecord.objects.get(action="queue.purge")
        assert (record.target_type, record.target_id, record.actor_name, record.outcome) == (
            "queue", queue, "boss", "ok")
        assert record.detail == "3 message(s) deleted; 3 waiting job(s) cancelled"
        assert AuditRecord.objects.filter(action="job.cancel", source="ops").count() == 3

        # The API: CSRF on the write, then the same purge.
        job_start(kind="demo.noop", owner=owner, queue=queue)
        url = f"/api/ops/queues/{queue}/purge/"
        assert staff.post(url).status_code == 403
        csrf = staff.cookies["csrftoken"].value
        answer = staff.post(url, HTTP_X_CSRFTOKEN=csrf).json()
        assert (answer["messages"], answer["cancelled"], answer["left"]) == (1, 1, 0)
        assert staff.post("/api/ops/queues/%01bad/purge/",
                          HTTP_X_CSRFTOKEN=csrf).status_code == 422
    finally:
        with current_app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)


def test_oldest_message_age_reads_the_head_without_taking_it(make_user):
    """Redis: LINDEX; RabbitMQ: basic_get then requeue, which must keep the order."""
    queue = f"age{secrets.token_hex(4)}"
    owner = make_user()
    try:
        first = job_start(kind="demo.noop", owner=owner, queue=queue)
        job_start(kind="demo.noop", owner=owner, queue=queue)
        for _ in range(3):
            (info,) = queue_infos([queue]) or []
            assert info.depth == 2 and info.oldest_age is not None and info.oldest_age >= 0
        with current_app.connection_for_read() as connection:
            message = connection.default_channel.basic_get(queue=queue, no_ack=True)
            headers = message.headers
        assert headers["id"] == str(first.celery_task_id)  # still the head
        assert isinstance(headers["taskstream_sent_at"], float)
    finally:
        with current_app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)


def test_periodic_page_shows_last_and_next_run_history_and_missed(staff):
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from taskstream.periodic.models import MissedRun, PeriodicRun

    every = IntervalSchedule.objects.create(every=60, period=IntervalSchedule.SECONDS)
    last = timezone.now() - timedelta(seconds=20)
    PeriodicTask.objects.create(name="digest", task="demo.noop", interval=every,
                                last_run_at=last, total_run_count=4)
    PeriodicRun.objects.create(name="digest", task="demo.noop", task_id=str(uuid.uuid4()),
                               started_at=last, finished_at=last, duration=0.25,
                               outcome="failed", error="ZeroDivisionError: boom",
                               hostname="w1@host")
    MissedRun.objects.create(name="digest", due_at=last - timedelta(minutes=5))
    hourly = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    long_ago = timezone.now() - timedelta(hours=3)
    PeriodicTask.objects.create(name="nightly", task="demo.noop", interval=hourly,
                                last_run_at=long_ago)
    page = staff.get("/ops/periodic/").content.decode()
    nightly = page[page.index('data-schedule="nightly"'):]  # after digest: by name
    due = dict(re.findall(r'data-field="(next)"><time datetime="([^"]+)"', nightly))["next"]
    # Overdue: beat's due time (an hour after the last run), not "now".
    assert abs(datetime.fromisoformat(due) - (long_ago + timedelta(hours=1))) < timedelta(
        seconds=5)
    assert "(overdue)" in nightly
    section = page[page.index('data-schedule="digest"'):page.index('data-schedule="nightly"')]
    assert "ZeroDivisionError: boom" in section and "0.250 s" in section
    shown = dict(re.findall(r'data-field="(last|next)"><time datetime="([^"]+)"', section))
    assert datetime.fromisoformat(shown["last"]) == last
    # Beat's estimate from the last run: 60 s after it (computed a moment later).
    assert abs(datetime.fromisoformat(shown["next"]) - (last + timedelta(seconds=60))
               ) < timedelta(seconds=5)
    assert 'class="missed"><strong>digest</strong>' in page


@pytest.mark.usefixtures("celery_worker")
def test_workers_page_lists_the_running_worker(staff, celery_worker):
    from taskstream.ops.worker_status import workers_online

    found = workers_online(timeout=3.0, fresh=True) or []
    mine = [w for w in found if w.hostname.startswith(celery_worker.name + "@")]
    assert len(mine) == 1 and mine[0].concurrency == 2
    page = staff.get("/ops/workers/").content.decode()
    assert f'data-hostname="{mine[0].hostname}"' in page
    listed = staff.get("/api/ops/workers/").json()
    assert any(w["hostname"] == mine[0].hostname and w["concurrency"] == 2 for w in listed)


def test_retry_all_failed_of_a_kind_from_the_jobs_page_is_confirmed_and_audited(
        make_user, staff):
    owner = make_user()
    queue = f"retryall{secrets.token_hex(4)}"  # no worker reads it: the jobs stay queued
    failed = [Job.objects.create(kind="demo.flaky", owner=owner, state="failed", queue=queue,
                                 finished_at=timezone.now()) for _ in range(2)]
    other = Job.objects.create(kind="demo.slow", owner=owner, state="failed", queue=queue,
                               finished_at=timezone.now())
    try:
        page = staff.get("/ops/jobs/?kind=demo.flaky&state=failed").content.decode()
        link = re.search(r'href="(/ops/failures/retry/\?kind=demo.flaky)"', page)
        assert link is not None
        confirm = staff.get(link.group(1))
        assert "Retry all 2 failed demo.flaky jobs?" in confirm.content.decode()
        assert staff.post("/ops/failures/retry/", {"kind": "demo.flaky"}).status_code == 403
        token = str(confirm.context["csrf_token"])
        done = staff.post("/ops/failures/retry/", {"kind": "demo.flaky",
                                                   "csrfmiddlewaretoken": token})
        assert done.status_code == 302
        assert {Job.objects.get(pk=j.pk).state for j in failed} == {"queued"}
        assert Job.objects.get(pk=other.pk).state == "failed"  # another kind: left alone
        bulk = AuditRecord.objects.get(action="jobs.retry_failed")
        assert (bulk.target_id, bulk.actor_name, bulk.detail) == (
            "demo.flaky", "boss", "2 of 2 failed job(s) queued again")
        assert set(AuditRecord.objects.filter(action="job.retry").values_list(
            "target_id", flat=True)) == {str(j.pk) for j in failed}
    finally:
        with current_app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)
