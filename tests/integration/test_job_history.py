"""A job's runs read back from its log: the attempts a job page and the API show."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from django.test import Client

from taskstream.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("celery_worker")]


def wait_state(job_id: str, state: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while (current := Job.objects.get(pk=job_id).state) != state:
        assert time.monotonic() < deadline, f"job still {current}, wanted {state}"
        time.sleep(0.05)


def test_attempts_list_each_run_with_its_error(make_user: Any) -> None:
    client = Client()
    client.force_login(make_user())
    job = client.post("/api/jobs/", json.dumps({"kind": "demo.flaky",
                                                "params": {"fail_times": 1}}),
                      content_type="application/json").json()
    wait_state(job["id"], "succeeded")

    found = client.get(f"/api/jobs/{job['id']}/attempts/").json()
    assert found["complete"] is True
    runs = found["attempts"]
    assert [(a["number"], a["outcome"]) for a in runs] == [(1, "retrying"), (2, "succeeded")]
    assert runs[0]["error"] == {"type": "DemoFlakyError", "message": "planned failure 1 of 1"}
    assert runs[1]["error"] is None
    # Times of the changes themselves: the retry's backoff lies between the two runs.
    assert runs[0]["started_at"] < runs[0]["finished_at"] < runs[1]["started_at"]
    assert runs[1]["started_at"] < runs[1]["finished_at"]
    # The same runs, rendered on the job's page.
    html = client.get(f"/jobs/{job['id']}/").content.decode()
    assert "planned failure 1 of 1" in html
