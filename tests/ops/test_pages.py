"""The ops pages of the demo: staff only; the audit trail on its page and on the job's page."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from taskstream.ops.models import AuditRecord

pytestmark = pytest.mark.django_db


def test_audit_page_and_job_page_show_who_cancelled(django_user_model):
    owner = django_user_model.objects.create_user(username="owner")
    staff = django_user_model.objects.create_user(username="boss", is_staff=True)
    client = Client()
    client.force_login(owner)
    job = client.post("/api/jobs/", json.dumps({"kind": "demo.slow"}),
                      content_type="application/json").json()
    client.post(f"/api/jobs/{job['id']}/cancel/")
    page = client.get(f"/jobs/{job['id']}/").content.decode()
    assert 'id="audit-card"' in page and "job.cancel" in page and "owner" in page

    assert client.get("/ops/audit/").status_code == 403  # signed in, not staff
    assert Client().get("/ops/audit/").status_code == 302  # to the login page
    boss = Client()
    boss.force_login(staff)
    page = boss.get("/ops/audit/").content.decode()
    assert f'href="/jobs/{job["id"]}/"' in page and "job.cancel" in page
    assert boss.get("/ops/audit/?outcome=nonsense").status_code == 400
    assert AuditRecord.objects.count() == 1


def test_job_page_without_actions_has_no_audit_card(django_user_model):
    owner = django_user_model.objects.create_user(username="owner")
    client = Client()
    client.force_login(owner)
    job = client.post("/api/jobs/", json.dumps({"kind": "demo.slow"}),
                      content_type="application/json").json()
    assert 'id="audit-card"' not in client.get(f"/jobs/{job['id']}/").content.decode()
