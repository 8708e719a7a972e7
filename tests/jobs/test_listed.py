""""My jobs" lists the jobs a user started, not the jobs apps run on their behalf."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from taskstream.jobs.models import Job
from tests.pipelines.cleanup import remove_pipeline_files  # noqa: F401
from tests.pipelines.data import make_csv

pytestmark = pytest.mark.django_db(transaction=True)


def page_job_ids(client: Client) -> list[str]:
    html = client.get("/jobs/").content.decode()
    start = html.index('<script id="jobs-initial" type="application/json">')
    payload = html[start:].split(">", 1)[1].split("</script>", 1)[0]
    return [job["id"] for job in json.loads(payload)["jobs"]]


def test_my_jobs_lists_what_i_started_not_pipelines_or_the_welcome_email() -> None:
    client = Client()
    response = client.post("/signup/", {"username": "newcomer", "password1": "a-Long-pw-42",
                                        "password2": "a-Long-pw-42"})
    assert response.status_code == 302
    uploaded = client.post("/api/pipelines/", {"file": SimpleUploadedFile("d.csv", make_csv(5))})
    assert uploaded.status_code == 202
    started = client.post("/api/jobs/", json.dumps({"kind": "demo.slow"}),
                          content_type="application/json")
    assert started.status_code == 202
    mine = started.json()["id"]
    # The welcome e-mail and the pipeline's parent job are the user's rows all the same.
    kinds = set(Job.objects.filter(owner__username="newcomer", parent__isnull=True)
                .values_list("kind", flat=True))
    assert len(kinds) == 3

    listed = client.get("/api/jobs/").json()
    assert [job["id"] for job in listed["items"]] == [mine] and listed["count"] == 1
    assert page_job_ids(client) == [mine]


def test_a_pipeline_job_is_still_readable_by_id(make_user: Any) -> None:
    client = Client()
    client.force_login(make_user())
    client.post("/api/pipelines/", {"file": SimpleUploadedFile("d.csv", make_csv(5))})
    parent = Job.objects.get(parent__isnull=True)
    assert client.get("/api/jobs/").json()["count"] == 0
    # Unlisted is not hidden: its own app's page links to it, and the API reads it by id.
    assert client.get(f"/api/jobs/{parent.pk}/").json()["id"] == str(parent.pk)
