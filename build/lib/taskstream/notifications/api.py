"""HTTP API of the inbox: list (paginated, unread filter), unread count, mark read.
Session auth; CSRF on writes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from taskstream.api import ApiError
from taskstream.conf import conf
from taskstream.notifications import selectors, services
from taskstream.notifications.models import Notification

router = Router(tags=["notifications"])


class NotificationOut(Schema):
    id: int
    kind: str
    title: str
    body: str
    url: str
    data: dict[str, Any]
    read: bool
    read_at: datetime | None
    created_at: datetime


class InboxQuery(Schema):
    unread: bool = False
    before: int | None = Field(None, ge=1)
    limit: int | None = Field(None, ge=1, le=100)


class InboxOut(Schema):
    items: list[NotificationOut]
    next_before: int | None
    unread: int
    cursor: str


class UnreadOut(Schema):
    unread: int


class MarkReadIn(Schema):
    # Ids the database can hold: a larger one is a 422, not an overflow in the query.
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(max_length=1000)


class MarkedOut(Schema):
    marked: list[int]
    unread: int


@router.get("/notifications/", response=InboxOut)
def notifications_list(request: HttpRequest, query: Query[InboxQuery]) -> dict[str, Any]:
    """Your notifications, newest first; ``next_before`` fetches the next page. Subscribe to
    ``user:<id>`` with ``since=cursor`` to continue live without missing one."""
    cursor = selectors.user_topic_cursor(request.user)  # before the rows: no gap after them
    rows, next_before = selectors.notification_page(
        user=request.user, unread_only=query.unread, before=query.before,
        limit=query.limit or conf.NOTIFICATIONS_PAGE)
    return {"items": [selectors.notification_payload(n) for n in rows],
            "next_before": next_before,
            "unread": selectors.notification_unread_count(user=request.user),
            "cursor": cursor}


@router.get("/notifications/unread-count/", response=UnreadOut)
def notifications_unread_count(request: HttpRequest) -> dict[str, Any]:
    return {"unread": selectors.notification_unread_count(user=request.user)}


@router.post("/notifications/read/", response=MarkedOut)
def notifications_mark_read(request: HttpRequest, payload: MarkReadIn) -> dict[str, Any]:
    """Mark these of your notifications read (others' ids are ignored)."""
    marked = services.notification_mark_read(user=request.user, ids=payload.ids)
    return {"marked": marked,
            "unread": selectors.notification_unread_count(user=request.user)}


@router.post("/notifications/read-all/", response=MarkedOut)
def notifications_mark_all_read(request: HttpRequest) -> dict[str, Any]:
    marked = services.notification_mark_read(user=request.user)
    return {"marked": marked, "unread": 0}


@router.post("/notifications/{notification_id}/read/", response=MarkedOut)
def notifications_mark_one_read(request: HttpRequest, notification_id: int) -> dict[str, Any]:
    if not Notification.objects.filter(pk=notification_id,
                                       recipient_id=request.user.pk).exists():
        raise ApiError(404, "not_found", "no such notification")
    marked = services.notification_mark_read(user=request.user, ids=[notification_id])
    return {"marked": marked,
            "unread": selectors.notification_unread_count(user=request.user)}
