"""The welcome e-mail through a real worker: transient SMTP failures are retried with
backoff, and exactly one e-mail goes out, however often the task runs."""

from __future__ import annotations

import time

import pytest
from django.core import mail

from taskstream.notifications.models import SentEmail
from taskstream.notifications.services import WELCOME_TASK, email_welcome_schedule

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def mail_worker(start_worker, celery_queue, tmp_path):
    """A worker on a queue of its own whose e-mail backend fails twice, then writes files."""
    from example.celery import app

    queue = f"{celery_queue}-mail"
    worker = start_worker(concurrency=1, CELERY_TASK_DEFAULT_QUEUE=queue,
                          EMAIL_BACKEND="tests.notifications.email_backend.FlakyFileBackend",
                          TEST_EMAIL_DIR=str(tmp_path), TEST_EMAIL_FAILURES="2")
    routes = app.conf.task_routes
    _route(app, {WELCOME_TASK: {"queue": queue}})
    yield tmp_path
    _route(app, routes)
    worker.stop()


def _route(app, routes):
    app.conf.task_routes = routes
    app.amqp.flush_routes()  # the router is built once from the routes of the time
    app.amqp.router = app.amqp.Router()


def test_welcome_email_is_retried_then_sent_once(mail_worker, make_user):
    from taskstream.jobs.models import Job

    user = make_user(email="new@example.com")
    job = email_welcome_schedule(user=user)
    deadline = time.monotonic() + 60
    while Job.objects.get(pk=job.pk).state not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, "the welcome e-mail job did not finish"
        time.sleep(0.1)
    job.refresh_from_db()
    assert job.state == "succeeded" and job.result == {"sent": True}
    assert job.attempt == 3  # two planned SMTP failures, then the send
    sent = sorted(mail_worker.glob("*.eml"))
    assert len(sent) == 1
    text = sent[0].read_text()
    assert "To: new@example.com" in text and "Welcome to taskstream" in text
    assert "text/html" in text
    record = SentEmail.objects.get(key=f"welcome:{user.pk}")
    assert record.attempts == 3 and record.sent_at is not None
    # Scheduling again (a double-submitted signup) is the same job; nothing more is sent.
    assert email_welcome_schedule(user=user).pk == job.pk


def test_a_second_delivery_sends_nothing(make_user):
    from taskstream.notifications.services import email_welcome_send

    user = make_user(email="once@example.com")
    assert email_welcome_send(user_id=user.pk) is True
    assert email_welcome_send(user_id=user.pk) is False
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["once@example.com"]
    assert message.alternatives[0][1] == "text/html"
    assert user.username in message.body


def test_no_address_no_email(make_user):
    from taskstream.notifications.services import email_welcome_send

    user = make_user(email="")
    assert email_welcome_send(user_id=user.pk) is False
    assert email_welcome_send(user_id=987654321) is False
    assert mail.outbox == []
