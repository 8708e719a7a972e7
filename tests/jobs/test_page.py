"""The demo "My jobs" page renders the user's own jobs and the cursor to resume from."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from taskstream.jobs import job_start

pytestmark = pytest.mark.django_db


def test_page_embeds_only_my_jobs_and_a_cursor(django_user_model):
    me = django_user_model.objects.create_user(username="me")
    other = django_user_model.objects.create_user(username="other")
    mine = job_start(kind="demo.slow", owner=me)
    job_start(kind="demo.slow", owner=other)
    client = Client()
    client.force_login(me)
    response = client.get("/jobs/")
    assert response.status_code == 200
    assert "csrftoken" in response.cookies
    html = response.content.decode()
    start = html.index('<script id="jobs-initial" type="application/json">')
    payload = html[start:].split(">", 1)[1].split("</script>", 1)[0]
    initial = json.loads(payload)
    assert initial["topic"] == f"user:{me.pk}" and initial["cursor"]
    assert [job["id"] for job in initial["jobs"]] == [str(mine.pk)]


def test_page_needs_a_login():
    assert Client().get("/jobs/").status_code == 302
