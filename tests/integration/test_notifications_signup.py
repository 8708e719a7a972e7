"""Signing up on the demo site sends the welcome e-mail, once, through a real worker."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from taskstream.notifications.models import SentEmail
from taskstream.notifications.services import WELCOME_TASK

pytestmark = pytest.mark.django_db(transaction=True)


def test_signup_queues_the_welcome_email_as_a_job(celery_worker):
    from taskstream.jobs.models import Job

    client = Client()
    response = client.post("/signup/", {"username": "newcomer", "email": "signup@example.com",
                                        "password1": "a-long-pass-phrase-1",
                                        "password2": "a-long-pass-phrase-1"})
    assert response.status_code == 302
    user = get_user_model().objects.get(username="newcomer")
    assert user.email == "signup@example.com"
    job = Job.objects.get(owner=user, kind=WELCOME_TASK)
    deadline = time.monotonic() + 30
    while Job.objects.get(pk=job.pk).state != "succeeded":
        assert time.monotonic() < deadline, "the welcome e-mail job did not finish"
        time.sleep(0.1)
    record = SentEmail.objects.get(key=f"welcome:{user.pk}")
    assert record.sent_at is not None and record.to == "signup@example.com"
    assert record.subject == "Welcome to taskstream, newcomer"


def test_a_failed_signup_queues_nothing():
    from taskstream.jobs.models import Job

    response = Client().post("/signup/", {"username": "x", "password1": "a",
                                          "password2": "b"})
    assert response.status_code == 200
    assert not Job.objects.filter(kind=WELCOME_TASK).exists()
