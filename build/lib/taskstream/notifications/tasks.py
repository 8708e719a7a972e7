"""Celery tasks of notifications: thin, they pass ids and call services."""

from __future__ import annotations

import socket
from smtplib import SMTPException
from typing import Any

from celery import Task, shared_task
from django.apps import apps

from taskstream.notifications.services import WELCOME_TASK, email_welcome_send

# A LiveTask only when the jobs app is in use (its tasks module is then importable).
Base: type[Task]
if apps.is_installed("taskstream.jobs"):
    from taskstream.jobs.tasks import LiveTask as Base
else:
    Base = Task

# What a mail server or the network does when it is briefly unwell: worth a retry.
TRANSIENT_MAIL_ERRORS = (SMTPException, ConnectionError, TimeoutError, socket.gaierror)


# A LiveTask where the jobs app is installed, so that started as a job its retries show on
# the job; a plain task (``send_welcome_email.delay(user_id=...)``) otherwise.
@shared_task(
    base=Base, bind=True, name=WELCOME_TASK,
    autoretry_for=TRANSIENT_MAIL_ERRORS,
    retry_backoff=True,  # 1 s, 2 s, 4 s ... with full jitter, capped below
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=6,
)
def send_welcome_email(self: Any, *, user_id: int) -> dict[str, Any]:
    """Send the welcome e-mail (idempotent: a retry or duplicate delivery sends one)."""
    return {"sent": email_welcome_send(user_id=user_id)}
