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


def _client(user):  # type: ignore[no-untyped-def]
    client = Client()
    client.force_login(user)
    return client


def _initial(html: str, name: str) -> dict:  # type: ignore[type-arg]
    start = html.index(f'<script id="{name}" type="application/json">')
    return json.loads(html[start:].split(">", 1)[1].split("</script>", 1)[0])


def test_list_filters_and_pages_with_links_that_keep_the_filters(django_user_model, settings):
    settings.TASKSTREAM = {**settings.TASKSTREAM, "JOB_PAGE_SIZE": 2}
    me = django_user_model.objects.create_user(username="me")
    slow = [job_start(kind="demo.slow", owner=me) for _ in range(3)]
    flaky = job_start(kind="demo.flaky", owner=me)
    client = _client(me)

    first = client.get("/jobs/").content.decode()
    assert [j["id"] for j in _initial(first, "jobs-initial")["jobs"]] == [str(flaky.pk),
                                                                          str(slow[2].pk)]
    assert 'href="?page=2" rel="next"' in first and "page 1 of 2" in first

    second = client.get("/jobs/?kind=demo.slow&page=2").content.decode()
    initial = _initial(second, "jobs-initial")
    assert [j["id"] for j in initial["jobs"]] == [str(slow[0].pk)]
    assert initial["filters"] == {"kind": "demo.slow"} and initial["page"] == 2
    assert initial["jobs"][0]["label"] == "Slow job with steps"
    assert 'href="?kind=demo.slow&amp;page=1" rel="prev"' in second

    assert client.get("/jobs/?state=running").content.decode().count("No jobs match") == 1
    refused = client.get("/jobs/?state=bogus")
    assert refused.status_code == 400 and "These filters do not exist" in refused.content.decode()


def test_job_page_shows_params_to_its_owner_only(django_user_model):
    me = django_user_model.objects.create_user(username="me")
    other = django_user_model.objects.create_user(username="other")
    job = job_start(kind="demo.slow", owner=me, params={"steps": 7, "step_seconds": 0.1})
    page = _client(me).get(f"/jobs/{job.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "&quot;steps&quot;: 7" in html and "Slow job with steps" in html
    initial = _initial(html, "job-initial")
    assert initial["job"]["id"] == str(job.pk) and initial["job"]["cursor"]
    assert initial["listed"] is True and initial["attempts"] == []
    assert _client(other).get(f"/jobs/{job.pk}/").status_code == 404
    assert _client(me).get("/jobs/00000000-0000-0000-0000-000000000000/").status_code == 404
