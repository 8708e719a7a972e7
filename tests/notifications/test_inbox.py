"""Inbox services: what gets marked, and what is published, against a real Redis."""

from __future__ import annotations

import json

import pytest

from taskstream.hub.keys import log_key
from taskstream.hub.redis import sync_client
from taskstream.notifications.models import Notification
from taskstream.notifications.services import notification_create, notification_mark_read

pytestmark = pytest.mark.django_db


_touched: list[str] = []


@pytest.fixture(autouse=True)
def _forget_logs():
    yield
    # Ids come back after a rolled-back test: leave no events for a later user with this id.
    if _touched:
        sync_client().delete(*_touched)
        _touched.clear()


def _fresh(user):
    key = log_key(f"user:{user.pk}")
    sync_client().delete(key)
    _touched.append(key)
    return user


def _events(user) -> list[tuple[str, dict]]:
    entries = sync_client().xrange(log_key(f"user:{user.pk}"))
    return [(json.loads(f[b"e"]), json.loads(f[b"d"])) for _id, f in entries]


def test_create_publishes_after_commit_with_the_unread_count(
        django_user_model, django_capture_on_commit_callbacks):
    user = _fresh(django_user_model.objects.create_user("u1"))
    with django_capture_on_commit_callbacks(execute=True):
        note = notification_create(recipient=user, kind="k", title="t" * 300)
    assert len(note.title) == 200  # clipped to the column
    [(event, data)] = _events(user)
    assert event == "notification.created"
    assert (data["id"], data["unread"], data["read"]) == (note.pk, 1, False)


def test_mark_read_touches_only_the_users_unread(django_user_model,
                                                django_capture_on_commit_callbacks):
    user = _fresh(django_user_model.objects.create_user("u2"))
    other = django_user_model.objects.create_user("u3")
    mine = [notification_create(recipient=user, kind="k", title=str(n)) for n in range(3)]
    theirs = notification_create(recipient=other, kind="k", title="x")
    with django_capture_on_commit_callbacks(execute=True):
        changed = notification_mark_read(user=user, ids=[mine[0].pk, theirs.pk])
    assert changed == [mine[0].pk]
    assert Notification.objects.get(pk=theirs.pk).read_at is None
    with django_capture_on_commit_callbacks(execute=True):
        assert notification_mark_read(user=user, ids=[mine[0].pk]) == []  # already read
        assert notification_mark_read(user=user) == [mine[1].pk, mine[2].pk]
    reads = [data for event, data in _events(user) if event == "notification.read"]
    assert reads == [{"ids": [mine[0].pk], "all": False, "unread": 2},
                     {"ids": [mine[1].pk, mine[2].pk], "all": True, "unread": 0}]
