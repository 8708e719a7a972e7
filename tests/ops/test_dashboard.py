"""The staff pages: staff only, actions confirmed, POSTed with CSRF, audited."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.utils import timezone

from taskstream.jobs.models import Job
from taskstream.ops.models import AuditRecord

pytestmark = pytest.mark.django_db

PAGES = ["/ops/", "/ops/failures/", "/ops/stuck/", "/ops/audit/",
         "/ops/failures/retry/?kind=demo.slow"]


@pytest.fixture
def job(django_user_model) -> Job:
    owner = django_user_model.objects.create_user(username="owner")
    client = Client()
    client.force_login(owner)
    data = client.post("/api/jobs/", json.dumps({"kind": "demo.slow"}),
                       content_type="application/json").json()
    Job.objects.filter(pk=data["id"]).update(
        state="failed", finished_at=timezone.now(), error_type="ValueError",
        error_message="bad row 7",
        error_traceback="Traceback (most recent call last):\n  ...\nValueError: bad row 7")
    return Job.objects.get(pk=data["id"])


def test_every_ops_page_and_api_is_staff_only(job, django_user_model):
    member = Client()
    member.force_login(django_user_model.objects.create_user(username="member"))
    for path in [*PAGES, f"/ops/jobs/{job.pk}/retry/"]:
        assert member.get(path).status_code == 403, path
        assert Client().get(path).status_code == 302, path  # to the login page
    assert member.post(f"/ops/jobs/{job.pk}/retry/").status_code == 403
    assert member.post("/ops/failures/retry/", {"kind": "demo.slow"}).status_code == 403
    assert member.get("/api/ops/overview/").status_code == 403
    assert Job.objects.get(pk=job.pk).state == "failed"
    assert not AuditRecord.objects.exists()


def test_failures_page_shows_the_traceback_and_retry_is_confirmed_then_audited(
        job, django_user_model):
    staff = django_user_model.objects.create_user(username="boss", is_staff=True)
    boss = Client(enforce_csrf_checks=True)
    boss.force_login(staff)
    page = boss.get("/ops/failures/").content.decode()
    assert "bad row 7" in page and "Traceback (most recent call last)" in page
    confirm = boss.get(f"/ops/jobs/{job.pk}/retry/?back=ops-failures")
    assert confirm.status_code == 200 and "Retry demo.slow job" in confirm.content.decode()
    assert Job.objects.get(pk=job.pk).state == "failed"  # a GET does nothing
    # Without the CSRF token the POST is refused.
    assert boss.post(f"/ops/jobs/{job.pk}/retry/", {"back": "ops-failures"}
                     ).status_code == 403
    token = confirm.context["csrf_token"]
    done = boss.post(f"/ops/jobs/{job.pk}/retry/",
                     {"back": "ops-failures", "csrfmiddlewaretoken": str(token)})
    assert done.status_code == 302 and done["Location"] == "/ops/failures/"
    assert Job.objects.get(pk=job.pk).state == "queued"
    record = AuditRecord.objects.get()
    assert (record.action, record.source, record.actor_name) == ("job.retry", "ops", "boss")


def test_overview_has_the_numbers_and_the_chart(job, django_user_model):
    staff = django_user_model.objects.create_user(username="boss", is_staff=True)
    boss = Client()
    boss.force_login(staff)
    page = boss.get("/ops/").content.decode()
    assert '<svg class="throughput"' in page and "1 failed" in page
    data = boss.get("/api/ops/overview/").json()
    assert data["failed"] == 1 and data["failure_rate"] == 1.0 and data["minutes"][-1] == [0, 1]
