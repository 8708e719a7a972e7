"""Reads: inbox pages, unread counts, event payloads."""

from __future__ import annotations

from typing import Any

from taskstream.hub.cursors_api import latest_cursor
from taskstream.notifications.models import Notification


def notification_unread_count(*, user: Any) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def notification_page(*, user: Any, unread_only: bool, before: int | None,
                      limit: int) -> tuple[list[Notification], int | None]:
    """Newest first: up to ``limit`` notifications older than id ``before``, and the
    ``before`` of the next page (None at the end)."""
    qs = Notification.objects.filter(recipient=user).order_by("-id")
    if unread_only:
        qs = qs.filter(read_at__isnull=True)
    if before is not None:
        qs = qs.filter(id__lt=before)
    rows = list(qs[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].pk if more and rows else None)


def notification_payload(notification: Notification) -> dict[str, Any]:
    """The JSON shape of a notification in the API and in ``notification.created``."""
    return {
        "id": notification.pk,
        "kind": notification.kind,
        "title": notification.title,
        "body": notification.body,
        "url": notification.url,
        "data": notification.data,
        "read": notification.read_at is not None,
        "read_at": notification.read_at,
        "created_at": notification.created_at,
    }


def user_topic_cursor(user: Any) -> str:
    """Latest cursor of ``user:<id>``: read the inbox, then subscribe ``since`` it."""
    return latest_cursor(f"user:{user.pk}")
