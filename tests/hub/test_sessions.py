"""The per-process memory of session → user (taskstream.hub.sessions): one query on a
reconnect, and nothing served after a logout or a password change.

In this process first (query counts, the revocation channel's messages acting on it), then
on a real server: a socket reopened after logout or password change is not signed in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client

from taskstream.hub import sessions
from taskstream.hub.revocation import Registry, session_hash

pytestmark = pytest.mark.django_db(transaction=True)


def _login(user: Any) -> tuple[Client, str]:
    client = Client()
    client.force_login(user)
    return client, client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    sessions.forget_all()
    yield
    sessions.forget_all()


def test_a_remembered_session_costs_no_query_then_one(make_user: Any,
                                                      django_assert_num_queries: Any,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    user = make_user()
    _, key = _login(user)
    assert sessions.fresh_user(key) is None
    with django_assert_num_queries(2):  # Django's path: the session row, then the user
        assert sessions.user_from_session(key).pk == user.pk
    assert sessions.remembered(key) is not None
    with django_assert_num_queries(0):  # a reconnect within FRESH seconds
        assert sessions.fresh_user(key).pk == user.pk
    with django_assert_num_queries(1):  # later: the user, with the session's EXISTS
        again = sessions.user_from_session(key)
    assert again.pk == user.pk and again.is_authenticated
    monkeypatch.setattr(sessions, "FRESH", 0.0)
    sessions.user_from_session(key)
    assert sessions.fresh_user(key) is None


def test_logout_and_password_change_are_seen_even_without_a_message(make_user: Any) -> None:
    user = make_user()
    client, key = _login(user)
    sessions.user_from_session(key)
    client.logout()  # the row is gone: the remembered entry no longer signs anyone in
    assert not sessions.user_from_session(key).is_authenticated
    assert sessions.remembered(key) is None

    _, key = _login(user)
    sessions.user_from_session(key)
    user.set_password("changed-pass-1")
    user.save()
    assert not sessions.user_from_session(key).is_authenticated
    assert sessions.remembered(key) is None


def test_an_expired_or_inactive_session_is_refused(make_user: Any) -> None:
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    user = make_user()
    _, key = _login(user)
    sessions.user_from_session(key)
    Session.objects.filter(session_key=key).update(expire_date=timezone.now())
    assert not sessions.user_from_session(key).is_authenticated

    _, key = _login(user)
    sessions.user_from_session(key)
    type(user)._default_manager.filter(pk=user.pk).update(is_active=False)
    assert not sessions.user_from_session(key).is_authenticated


async def test_revocation_messages_drop_the_entries(make_user: Any) -> None:
    """What every server process does on the control channel: logout, password change."""
    user = await sync_to_async(make_user)()
    (_, first), (_, second) = [await sync_to_async(_login)(user) for _ in range(2)]
    for key in (first, second):
        await sync_to_async(sessions.user_from_session)(key)
    registry = Registry()
    registry.deliver(None, f'{{"op":"session","user":"{user.pk}",'
                           f'"session":"{session_hash(first)}"}}')
    assert sessions.fresh_user(first) is None and sessions.fresh_user(second) is not None
    registry.deliver(None, f'{{"op":"user","user":"{user.pk}"}}')
    assert sessions.fresh_user(second) is None
    await sync_to_async(sessions.user_from_session)(first)
    registry.resync()  # Pub/Sub was away: a revocation may have been missed
    assert sessions.fresh_user(first) is None
    await asyncio.sleep(0)  # the recheck task it started (no socket: nothing to close)


def test_it_stays_bounded(make_user: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions, "MAX_ENTRIES", 3)
    user = make_user()
    keys = [_login(user)[1] for _ in range(5)]
    for key in keys:
        sessions.user_from_session(key)
    assert [sessions.remembered(k) is not None for k in keys] == [False, False, True, True,
                                                                  True]


async def test_a_server_does_not_sign_in_a_logged_out_or_changed_session(
        connect: Any, make_user: Any) -> None:
    user = await sync_to_async(make_user)()
    client, key = await sync_to_async(_login)(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={key}"
    for _ in range(2):  # the second handshake is served from the server's memory
        ws = await connect(cookie=cookie)
        assert ws.welcome["user"] == user.pk
        await ws.close()
    await sync_to_async(client.logout)()
    ws = await connect(cookie=cookie)
    assert ws.welcome["user"] is None

    client, key = await sync_to_async(_login)(user)
    cookie = f"{settings.SESSION_COOKIE_NAME}={key}"
    for _ in range(2):
        ws = await connect(cookie=cookie)
        assert ws.welcome["user"] == user.pk
        await ws.close()

    def change() -> None:
        user.set_password("changed-pass-2")
        user.save()

    await sync_to_async(change)()
    ws = await connect(cookie=cookie)
    assert ws.welcome["user"] is None
