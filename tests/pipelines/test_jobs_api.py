"""A pipeline's parent job through the jobs API: retried through the pipelines API only."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from taskstream.jobs.models import Job
from taskstream.pipelines.services import PIPELINE_KIND

pytestmark = pytest.mark.django_db


def test_the_jobs_api_refuses_to_retry_a_pipeline_with_a_clear_error(make_user: Any) -> None:
    user = make_user()
    parent = Job.objects.create(owner=user, kind=PIPELINE_KIND, state="failed")
    client = Client()
    client.force_login(user)
    response = client.post(f"/api/jobs/{parent.pk}/retry/")
    assert response.status_code == 409
    assert response.json()["code"] == "not_retryable"
    assert "retried through its own app" in response.json()["detail"]
    parent.refresh_from_db()
    assert parent.state == "failed"
