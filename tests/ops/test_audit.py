"""The audit trail: owners' cancel and retry through the jobs API, staff actions from ops."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from taskstream.jobs.models import Job
from taskstream.ops.models import AuditRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user(username="owner", password="pw")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(username="boss", password="pw", is_staff=True)


def client_for(user: Any) -> Client:
    client = Client(enforce_csrf_checks=False)
    client.force_login(user)
    return client


def post(client: Client, path: str, body: Any = None) -> Any:
    return client.post(path, json.dumps(body or {}), content_type="application/json")


def start(client: Client) -> str:
    response = post(client, "/api/jobs/", {"kind": "demo.slow", "params": {"steps": 3}})
    assert response.status_code == 202
    return str(response.json()["id"])


def test_owner_cancel_through_the_jobs_api_is_audited_and_a_refusal_too(owner):
    client = client_for(owner)
    job_id = start(client)
    assert post(client, f"/api/jobs/{job_id}/cancel/").status_code == 200
    again = post(client, f"/api/jobs/{job_id}/cancel/")
    assert again.status_code == 409
    refused, done = AuditRecord.objects.filter(target_id=job_id)  # newest first
    assert (done.actor, done.actor_name, done.action, done.target_type, done.source,
            done.outcome) == (owner, "owner", "job.cancel", "job", "api", "ok")
    assert (refused.action, refused.outcome) == ("job.cancel", "refused")
    assert "cancelled" in refused.detail


def test_owner_retry_through_the_jobs_api_is_audited(owner):
    client = client_for(owner)
    job_id = start(client)
    Job.objects.filter(pk=job_id).update(state=Job.State.FAILED)
    assert post(client, f"/api/jobs/{job_id}/retry/").status_code == 202
    record = AuditRecord.objects.get(target_id=job_id)
    assert (record.action, record.outcome, record.source) == ("job.retry", "ok", "api")
    assert Job.objects.get(pk=job_id).state == Job.State.QUEUED


def test_someone_elses_job_writes_no_record(owner, django_user_model):
    job_id = start(client_for(owner))
    stranger = client_for(django_user_model.objects.create_user(username="stranger"))
    assert post(stranger, f"/api/jobs/{job_id}/cancel/").status_code == 404
    assert not AuditRecord.objects.exists()


def test_staff_retry_and_cancel_from_ops_are_audited(owner, staff):
    job_id = start(client_for(owner))
    boss = client_for(staff)
    response = post(boss, f"/api/ops/jobs/{job_id}/cancel/")
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    response = post(boss, f"/api/ops/jobs/{job_id}/retry/")
    assert response.status_code == 202 and response.json()["state"] == "queued"
    assert post(boss, f"/api/ops/jobs/{job_id}/retry/").status_code == 409
    rows = list(AuditRecord.objects.filter(target_id=job_id).values_list(
        "action", "outcome", "source", "actor_name"))
    assert rows == [("job.retry", "refused", "ops", "boss"), ("job.retry", "ok", "ops", "boss"),
                    ("job.cancel", "ok", "ops", "boss")]
    listed = boss.get("/api/ops/audit/?outcome=refused").json()
    assert listed["count"] == 1 and listed["items"][0]["target_id"] == job_id


def test_retry_all_failed_of_a_kind(owner, staff):
    client = client_for(owner)
    failed = [start(client) for _ in range(3)]
    Job.objects.filter(pk__in=failed[:2]).update(state=Job.State.FAILED)
    response = post(client_for(staff), "/api/ops/jobs/retry-failed/", {"kind": "demo.slow"})
    assert response.status_code == 202 and response.json() == {"kind": "demo.slow", "queued": 2}
    assert set(Job.objects.filter(pk__in=failed[:2]).values_list("state", flat=True)) == {
        "queued"}
    assert AuditRecord.objects.filter(action="job.retry", source="ops").count() == 2
    summary = AuditRecord.objects.get(action="jobs.retry_failed")
    assert summary.target_id == "demo.slow" and summary.detail.startswith("2 of 2")


def test_ops_api_is_staff_only(owner):
    job_id = start(client_for(owner))
    for client, status in ((client_for(owner), 403), (Client(), 401)):
        assert client.get("/api/ops/audit/").status_code == status
        for path in (f"/api/ops/jobs/{job_id}/cancel/", f"/api/ops/jobs/{job_id}/retry/"):
            response = post(client, path)
            assert response.status_code == status
            assert response.json()["code"] in ("forbidden", "unauthenticated")
        assert post(client, "/api/ops/jobs/retry-failed/", {"kind": "demo.slow"}
                    ).status_code == status
    assert Job.objects.get(pk=job_id).state == Job.State.QUEUED
    assert not AuditRecord.objects.exists()


def test_unknown_job_is_404_for_staff(staff):
    boss = client_for(staff)
    assert post(boss, "/api/ops/jobs/not-a-uuid/cancel/").status_code == 404
    assert post(boss, "/api/ops/jobs/00000000-0000-0000-0000-000000000000/retry/"
                ).json()["code"] == "not_found"
