"""The HTTP API in-process (Django's test client): codes, validation, who sees what."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from taskstream.jobs.models import Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner(django_user_model):
    return django_user_model.objects.create_user(username="owner", password="pw")


def client_for(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post(client: Client, path: str, body: Any = None, **headers: str) -> Any:
    return client.post(path, json.dumps(body or {}), content_type="application/json",
                       headers=headers)


def test_start_answers_202_with_snapshot_topic_and_cursor(owner):
    response = post(client_for(owner), "/api/jobs/",
                    {"kind": "demo.slow", "params": {"steps": 3}})
    assert response.status_code == 202
    data = response.json()
    assert data["state"] == "queued" and data["kind"] == "demo.slow"
    assert data["topic"] == f"job:{data['id']}" and data["cursor"]
    assert data["progress"] == {"current": 0, "total": None, "percent": None, "message": ""}
    assert Job.objects.get(pk=data["id"]).params == {"steps": 3, "step_seconds": 0.3}


@pytest.mark.parametrize(("body", "code"), [
    ({"kind": "no.such.kind"}, "unknown_kind"),
    ({"kind": "taskstream.jobs.reap"}, "unknown_kind"),  # a real task, not startable by HTTP
    ({"kind": "demo.slow", "params": {"steps": 0}}, "invalid_params"),
    ({"kind": "demo.slow", "params": {"steps": "many"}}, "invalid_params"),
    ({"kind": "demo.slow", "params": {"rm": "-rf"}}, "invalid_params"),
])
def test_bad_kinds_and_params_are_400_with_a_code(owner, body, code):
    response = post(client_for(owner), "/api/jobs/", body)
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not Job.objects.exists()


def test_malformed_body_is_422_and_anonymous_is_401(owner):
    response = post(client_for(owner), "/api/jobs/", {"params": {}})
    assert response.status_code == 422 and response.json()["code"] == "invalid"
    response = post(Client(), "/api/jobs/", {"kind": "demo.slow"})
    assert response.status_code == 401 and response.json()["code"] == "unauthenticated"


def test_idempotency_key_in_body_or_header_returns_the_first_job(owner):
    client = client_for(owner)
    first = post(client, "/api/jobs/", {"kind": "demo.slow", "idempotency_key": "abc"}).json()
    again = post(client, "/api/jobs/", {"kind": "demo.slow", "idempotency_key": "abc"}).json()
    header = post(client, "/api/jobs/", {"kind": "demo.slow"}, **{"Idempotency-Key": "abc"})
    assert first["id"] == again["id"] == header.json()["id"]
    conflict = post(client, "/api/jobs/", {"kind": "demo.flaky", "idempotency_key": "abc"})
    assert conflict.status_code == 409 and conflict.json()["code"] == "idempotency_conflict"
    assert Job.objects.count() == 1


def test_someone_elses_job_is_404_everywhere(owner, django_user_model):
    job = post(client_for(owner), "/api/jobs/", {"kind": "demo.slow"}).json()
    stranger = client_for(django_user_model.objects.create_user(username="stranger"))
    assert stranger.get(f"/api/jobs/{job['id']}/").status_code == 404
    assert post(stranger, f"/api/jobs/{job['id']}/cancel/").status_code == 404
    assert post(stranger, f"/api/jobs/{job['id']}/retry/").status_code == 404
    assert stranger.get("/api/jobs/").json()["count"] == 0
    assert stranger.get("/api/jobs/not-a-uuid/").status_code == 404
    assert Job.objects.get(pk=job["id"]).state == "queued"


def test_list_is_mine_newest_first_paginated_and_filtered(owner, settings):
    settings.TASKSTREAM = {**settings.TASKSTREAM, "JOB_PAGE_SIZE": 2}
    client = client_for(owner)
    ids = [post(client, "/api/jobs/", {"kind": kind}).json()["id"]
           for kind in ("demo.slow", "demo.flaky", "demo.slow")]
    page = client.get("/api/jobs/").json()
    assert page["count"] == 3 and page["pages"] == 2
    assert [j["id"] for j in page["items"]] == ids[::-1][:2]
    assert [j["id"] for j in client.get("/api/jobs/?page=2").json()["items"]] == ids[:1]
    assert client.get("/api/jobs/?kind=demo.flaky").json()["count"] == 1
    assert client.get("/api/jobs/?state=running").json()["count"] == 0
    assert client.get("/api/jobs/?state=bogus").status_code == 422


def test_cancel_and_retry_answer_the_new_state_or_409(owner):
    client = client_for(owner)
    job = post(client, "/api/jobs/", {"kind": "demo.slow"}).json()
    cancelled = post(client, f"/api/jobs/{job['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = post(client, f"/api/jobs/{job['id']}/cancel/")
    assert again.status_code == 409 and again.json()["code"] == "not_cancellable"
    retried = post(client, f"/api/jobs/{job['id']}/retry/")
    assert retried.status_code == 202 and retried.json()["state"] == "queued"
    twice = post(client, f"/api/jobs/{job['id']}/retry/")
    assert twice.status_code == 409 and twice.json()["code"] == "not_retryable"


def test_tracebacks_are_for_staff_only(owner, django_user_model):
    job = Job.objects.create(owner=owner, kind="demo.slow", state="failed",
                             error_type="ValueError", error_message="bad",
                             error_traceback="Traceback (most recent call last): secret")
    mine = client_for(owner).get(f"/api/jobs/{job.pk}/").json()
    assert mine["error"] == {"type": "ValueError", "message": "bad", "traceback": None}
    staff = django_user_model.objects.create_user(username="staff", is_staff=True)
    theirs = client_for(staff).get(f"/api/jobs/{job.pk}/").json()
    assert "secret" in theirs["error"]["traceback"]


def test_kinds_lists_what_may_be_started_with_schemas(owner):
    kinds = {k["name"]: k for k in client_for(owner).get("/api/jobs/kinds/").json()}
    assert {"demo.slow", "demo.flaky"} <= set(kinds)
    assert kinds["demo.slow"]["params_schema"]["properties"]["steps"]["maximum"] == 1000


def test_a_user_at_the_limit_of_unfinished_jobs_gets_429_until_one_ends(owner, settings):
    from taskstream.jobs import job_cancel

    settings.TASKSTREAM = {**settings.TASKSTREAM, "JOB_MAX_ACTIVE_PER_USER": 2}
    client = client_for(owner)
    first = post(client, "/api/jobs/", {"kind": "demo.slow"}, **{"Idempotency-Key": "k"})
    second = post(client, "/api/jobs/", {"kind": "demo.slow"})
    assert (first.status_code, second.status_code) == (202, 202)
    refused = post(client, "/api/jobs/", {"kind": "demo.slow"})
    assert refused.status_code == 429 and refused.json()["code"] == "too_many_jobs"
    assert Job.objects.filter(owner=owner).count() == 2  # nothing stored for the refusal
    # A replay of a started job (same key) is that job, not a new one: still answered.
    again = post(client, "/api/jobs/", {"kind": "demo.slow"}, **{"Idempotency-Key": "k"})
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    job_cancel(job=Job.objects.get(pk=second.json()["id"]), actor=owner)
    assert post(client, "/api/jobs/", {"kind": "demo.slow"}).status_code == 202
