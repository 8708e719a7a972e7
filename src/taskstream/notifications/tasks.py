"""Celery tasks of notifications: thin, they pass ids and call services."""

from __future__ import annotations

import socket
from smtplib import SMTPException

from celery import shared_task

from taskstream.notifications.services import email_welcome_send

# What a mail server or the network does when it is briefly unwell: worth a retry.
TRANSIENT_MAIL_ERRORS = (SMTPException, ConnectionError, TimeoutError, socket.gaierror)


@shared_task(
    name="taskstream.notifications.send_welcome_email",
    autoretry_for=TRANSIENT_MAIL_ERRORS,
    retry_backoff=True,  # 1 s, 2 s, 4 s ... with full jitter, capped below
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=6,
    acks_late=True,
)
def send_welcome_email(user_id: int) -> bool:
    """Send the welcome e-mail (idempotent: a retry or duplicate delivery sends one)."""
    return email_welcome_send(user_id=user_id)
