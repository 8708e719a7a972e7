"""Notifications' purge and daily digest, registered with ``taskstream.housekeeping``."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model

from taskstream.conf import conf
from taskstream.notifications.models import Notification
from taskstream.notifications.services import email_send_once


def notification_purge_read(*, before: datetime) -> int:
    """Delete notifications read before ``before`` (unread ones stay, however old)."""
    return int(Notification.objects.filter(read_at__lt=before).delete()[0])


def notification_digest_send(*, now: datetime) -> int:
    """E-mail each user with unread notifications from the last day a digest (once a day
    per user, however often this runs). Returns how many were sent."""
    since = now - timedelta(days=1)
    sent = 0
    users = get_user_model().objects.filter(
        is_active=True, taskstream_notifications__read_at__isnull=True,
        taskstream_notifications__created_at__gte=since).exclude(email="").distinct()
    for user in users:
        unread = list(Notification.objects.filter(recipient=user, read_at__isnull=True,
                                                  created_at__gte=since)
                      .order_by("-created_at")[:20])
        lines = [f"- {n.title}" + (f" ({n.url})" if n.url else "") for n in unread]
        text = (f"You have {len(unread)} unread notification{'s' if len(unread) != 1 else ''} "
                f"on {conf.SITE_NAME}:\n\n" + "\n".join(lines) + "\n")
        if email_send_once(key=f"digest:{user.pk}:{now:%Y-%m-%d}", to=user.email,
                           subject=f"[{conf.SITE_NAME}] Your daily digest", text=text,
                           recipient=user):
            sent += 1
    return sent


def register() -> None:
    from taskstream.housekeeping import register_digest, register_purge

    register_purge("notifications", notification_purge_read)
    register_digest("notifications", notification_digest_send)
