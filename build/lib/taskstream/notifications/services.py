"""Writes: create notifications and mark them read (each publishes on ``user:<id>``), and
send transactional e-mail exactly once per idempotency key."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from celery import signature
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMultiAlternatives
from django.db import IntegrityError, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.utils import timezone

from taskstream.conf import conf
from taskstream.notifications.models import Notification, SentEmail
from taskstream.notifications.selectors import notification_payload, notification_unread_count
from taskstream.outbox import outbox_publish

logger = logging.getLogger("taskstream.notifications")


def _topic(user_id: int) -> str:
    return f"user:{user_id}"


def notification_create(*, recipient: Any, kind: str, title: str, body: str = "", url: str = "",
                        data: dict[str, Any] | None = None,
                        key: str | None = None) -> Notification:
    """Store a notification, then (once committed) publish ``notification.created``.

    Stored first: a browser that is offline now finds it in the log when it resubscribes
    with its last cursor, or in the inbox API, so it is never only in flight. With ``key``
    a second call for the same recipient returns the first notification and publishes
    nothing (a task that runs twice notifies once).
    """
    if key is not None:
        existing = Notification.objects.filter(recipient=recipient, key=key).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                recipient=recipient, kind=kind[:64], title=title[:200], body=body,
                url=url[:500], data=data or {}, key=key,
            )
            payload = notification_payload(notification)
            # The count travels with the event so every tab sets its badge without a request.
            payload["unread"] = notification_unread_count(user=recipient)
            outbox_publish(topic=_topic(recipient.pk), event="notification.created",
                           data=payload)
    except IntegrityError:
        if key is None:
            raise
        return Notification.objects.get(recipient=recipient, key=key)  # lost the race
    return notification


def notification_mark_read(*, user: Any, ids: Iterable[int] | None = None) -> list[int]:
    """Mark some (``ids``) or all (``None``) of ``user``'s unread notifications read and
    publish ``notification.read`` so every open tab updates its badge. Returns the ids
    that changed."""
    unread = Notification.objects.filter(recipient=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=list(ids))
    with transaction.atomic():
        changed = list(unread.select_for_update().order_by("pk").values_list("pk", flat=True))
        if changed:
            Notification.objects.filter(pk__in=changed).update(read_at=timezone.now())
            outbox_publish(topic=_topic(user.pk), event="notification.read",
                           data={"ids": changed, "all": ids is None,
                                 "unread": notification_unread_count(user=user)})
    return changed


def email_send_once(*, key: str, to: str, subject: str, text: str, html: str | None = None,
                    recipient: Any = None) -> bool:
    """Send one e-mail per ``key``, however often this is called; True if it sent now.

    Each call counts an attempt (committed, so failed tries stay visible). The send
    runs under the row's lock: a duplicate delivery of the same task waits, then sees
    ``sent_at`` and sends nothing. A failure leaves ``sent_at`` empty for the retry.
    """
    row, _ = SentEmail.objects.get_or_create(key=key, defaults={
        "to": to, "subject": subject[:200], "recipient": recipient})
    if row.sent_at is not None:
        return False
    SentEmail.objects.filter(pk=row.pk).update(attempts=F("attempts") + 1)
    try:
        with transaction.atomic():
            locked = SentEmail.objects.select_for_update().get(pk=row.pk)
            if locked.sent_at is not None:
                return False
            message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [to])
            if html is not None:
                message.attach_alternative(html, "text/html")
            message.send()
            locked.sent_at = timezone.now()
            locked.last_error = ""
            locked.save(update_fields=["sent_at", "last_error"])
    except Exception as exc:
        SentEmail.objects.filter(pk=row.pk).update(last_error=f"{type(exc).__name__}: {exc}"[:2000])
        raise
    return True


def email_welcome_send(*, user_id: int) -> bool:
    """Render and send the welcome e-mail of ``user_id`` (once). False if nothing to send."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None or not getattr(user, "email", ""):
        logger.info("welcome e-mail: user %s is gone, inactive or has no address", user_id)
        return False
    context = {"user": user, "site_name": conf.SITE_NAME}
    subject = " ".join(render_to_string("taskstream/email/welcome_subject.txt",
                                        context).split())
    return email_send_once(
        key=f"welcome:{user.pk}", to=user.email, subject=subject, recipient=user,
        text=render_to_string("taskstream/email/welcome.txt", context),
        html=render_to_string("taskstream/email/welcome.html", context),
    )


WELCOME_TASK = "taskstream.notifications.send_welcome_email"


def email_welcome_schedule(*, user: Any) -> Any:
    """Queue the welcome e-mail for ``user`` once the current transaction commits.

    With the jobs app installed it runs as the user's job (its attempts and retries are
    visible like any job's) and returns the Job; otherwise it is a plain task.
    """
    from django.apps import apps

    if apps.is_installed("taskstream.jobs"):
        from taskstream.jobs import job_start

        return job_start(kind=WELCOME_TASK, owner=user, params={"user_id": user.pk},
                         idempotency_key="taskstream.welcome-email")
    # By name: the task module imports this one (no cycle services <-> tasks).
    welcome = signature(WELCOME_TASK, kwargs={"user_id": user.pk})
    transaction.on_commit(lambda: welcome.delay())
    return None


def notification_job_finished(*, job_id: str, url: str = "") -> Notification | None:
    """Tell a job's owner it finished (succeeded or failed), once per job."""
    from taskstream.jobs.kinds import get_kind
    from taskstream.jobs.models import Job

    job = Job.objects.filter(pk=job_id).select_related("owner").first()
    if job is None or job.state not in ("succeeded", "failed"):
        return None  # cancelled, or this run lost the job to another: nothing to tell
    kind = get_kind(job.kind)
    label = kind.label if kind is not None else job.kind
    ok = job.state == "succeeded"
    return notification_create(
        recipient=job.owner, kind=f"job.{job.state}",
        title=f"{label} is ready" if ok else f"{label} failed",
        body="" if ok else job.error_message[:500],
        url=url.format(id=job.id) if url else "",
        data={"job": str(job.id), "job_kind": job.kind, "state": job.state},
        key=f"job:{job.id}:{job.state}",
    )
