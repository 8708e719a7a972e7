"""Take back what authorized a socket: an ended session, a changed password, lost access.

A socket is authorized when it signs in and when it subscribes. These say that no longer
holds, and every server process acts on its own sockets:

* :func:`revoke_session` (logout): sockets signed in by that session, or by a ``ws-token``
  it issued, are closed (4401), and tokens it issued stop working;
* :func:`recheck_user` (password change, deactivation): each socket of the user is closed
  unless the user is still active with the same session auth hash;
* :func:`reauthorize` (a member left a room, a room went private or away): subscriptions
  to the topic are checked again and dropped with a ``forbidden`` error frame naming it.

They travel on one control channel of the fan-out, which every process that holds a
socket subscribes to. The channel's name is not a valid topic: no client can subscribe
to it or publish on it. If the process's Pub/Sub connection drops, a revocation sent
meanwhile may be missed, so after a reconnect every local user is checked again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from taskstream.conf import conf
from taskstream.hub import keys
from taskstream.hub.cursor import StreamId
from taskstream.hub.database import db_call
from taskstream.hub.log import EPHEMERAL_MARK
from taskstream.hub.redis import async_client, live_publish, sync_client
from taskstream.hub.sessions import forget_all, forget_session, forget_user, session_hash

logger = logging.getLogger("taskstream.hub")

__all__ = ["CONTROL", "Registry", "get_registry", "reauthorize", "recheck_user",
           "revoke_session", "session_hash", "session_revoked"]

# "!" cannot start a topic (protocol.TOPIC_RE): clients can neither read nor write it.
CONTROL = "!control"


def _revoked_key(digest: str) -> str:
    return f"{conf.KEY_PREFIX}revoked-session:{digest}"


def session_revoked(digest: str) -> bool:
    """Whether the session named by ``digest`` ended (tokens it issued are refused)."""
    return bool(digest) and bool(sync_client().exists(_revoked_key(digest)))


# -- senders (sync: views, signal receivers, services) -------------------------------------


def _send(message: dict[str, Any], *, remember: str | None = None) -> None:
    """Publish a control message; a Redis failure is logged, never raised into a logout."""
    payload = f"{EPHEMERAL_MARK} {json.dumps(message, separators=(',', ':'))}"
    channel = keys.channel(CONTROL)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        try:
            client = sync_client()
            if remember:  # tokens of this session are refused for as long as they live
                client.set(_revoked_key(remember), "1", ex=max(1, conf.TOKEN_MAX_AGE))
            live_publish(client, channel, payload)
        except Exception:
            logger.exception("hub: could not send a revocation (%s)", message.get("op"))
        return
    task = asyncio.get_running_loop().create_task(_asend(channel, payload, remember))
    task.add_done_callback(_log_failure)


async def _asend(channel: str, payload: str, remember: str | None) -> None:
    client = async_client()
    if remember:
        await client.set(_revoked_key(remember), "1", ex=max(1, conf.TOKEN_MAX_AGE))
    await live_publish(client, channel, payload)


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("hub: could not send a revocation", exc_info=task.exception())


def revoke_session(*, user_id: Any, session_key: str | None) -> None:
    """The session ended (logout): close its sockets and refuse the tokens it issued."""
    digest = session_hash(session_key)
    if not digest:
        return
    _send({"op": "session", "user": str(user_id), "session": digest}, remember=digest)


def recheck_user(*, user_id: Any) -> None:
    """The user's password or active flag changed: close sockets that no longer hold."""
    _send({"op": "user", "user": str(user_id)})


def reauthorize(*, topic: str, user_ids: Iterable[Any] | None = None) -> None:
    """Check subscriptions to ``topic`` again (of those users, or of everyone)."""
    message: dict[str, Any] = {"op": "topic", "topic": topic}
    if user_ids is not None:
        message["users"] = [str(u) for u in user_ids]
        if not message["users"]:
            return
    _send(message)


# -- the receiving side (one per server process) --------------------------------------------


class Member(Protocol):
    """What a socket offers the registry (see :class:`~taskstream.hub.connection.Connection`)."""

    @property
    def user(self) -> Any: ...

    @property
    def session(self) -> str: ...

    def revoke(self, message: str) -> None: ...

    async def reauthorize(self, topic: str) -> None: ...


class Registry:
    """The signed-in sockets of this process by user id, and the control-channel listener."""

    def __init__(self) -> None:
        self._by_user: dict[str, set[Member]] = {}
        self._joined: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def add(self, member: Member) -> None:
        """Track a signed-in socket; the first one makes this process listen (awaited, so
        a revocation sent after a socket was welcomed is never missed)."""
        if self._joined is None:
            from taskstream.hub.fanout import get_fanout

            joined = self._joined = asyncio.get_running_loop().create_future()
            try:
                await get_fanout().join(CONTROL, self)
            except BaseException as exc:
                # Redis is away: the socket still works as far as it can, and the next
                # socket tries again (the fan-out's reconnect rechecks everyone anyway).
                self._joined = None
                if not isinstance(exc, Exception):
                    raise
                logger.warning("hub: could not listen for revocations (%s)", exc)
            finally:
                joined.set_result(None)
        elif not self._joined.done():
            await asyncio.shield(self._joined)
        self._by_user.setdefault(str(member.user.pk), set()).add(member)

    def discard(self, member: Member) -> None:
        user = member.user
        if user is None or not getattr(user, "is_authenticated", False):
            return
        members = self._by_user.get(str(user.pk))
        if members is not None:
            members.discard(member)
            if not members:
                del self._by_user[str(user.pk)]

    # Subscriber protocol of the fan-out.
    def deliver(self, sid: StreamId | None, frame: str) -> None:
        try:
            message = json.loads(frame)
            op = message["op"]
        except (ValueError, KeyError, TypeError):
            logger.warning("hub: ignored a malformed control message")
            return
        if op == "session":
            forget_session(str(message.get("session")))
            for member in list(self._by_user.get(str(message.get("user")), ())):
                if member.session and member.session == message.get("session"):
                    member.revoke("your session ended; sign in again")
        elif op == "user":
            forget_user(message.get("user"))
            self._spawn(self._recheck([str(message.get("user"))]))
        elif op == "topic" and isinstance(message.get("topic"), str):
            self._forget(message["topic"])
            users = message.get("users")
            if isinstance(users, list):
                members = [m for u in users for m in self._by_user.get(str(u), ())]
            else:
                members = [m for ms in self._by_user.values() for m in ms]
            for member in members:
                self._spawn(member.reauthorize(message["topic"]))

    @staticmethod
    def _forget(topic: str) -> None:
        from taskstream.exceptions import ProtocolError
        from taskstream.hub.topics import resolve

        try:
            kind, key = resolve(topic)
        except ProtocolError:
            return
        if kind.forget is not None:
            kind.forget(key)

    def resync(self) -> None:
        # The Pub/Sub connection was lost for a while: a revocation may have been missed.
        forget_all()
        if self._by_user:
            self._spawn(self._recheck(list(self._by_user)))

    async def _recheck(self, user_ids: list[str]) -> None:
        current = await db_call(_auth_hashes, user_ids)
        for user_id in user_ids:
            for member in list(self._by_user.get(user_id, ())):
                if current.get(user_id) != member.user.get_session_auth_hash():
                    member.revoke("your account changed; sign in again")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("hub: acting on a revocation failed", exc_info=task.exception())


def _auth_hashes(user_ids: list[str]) -> dict[str, str]:
    """Session auth hashes of the active users among ``user_ids`` (absent: inactive/gone)."""
    from django.contrib.auth import get_user_model

    users = get_user_model()._default_manager.filter(pk__in=user_ids)
    return {str(u.pk): u.get_session_auth_hash() for u in users if u.is_active}


_registries: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Registry] = (
    weakref.WeakKeyDictionary()
)


def get_registry() -> Registry:
    """The registry of the running event loop (one per ASGI process)."""
    loop = asyncio.get_running_loop()
    registry = _registries.get(loop)
    if registry is None:
        registry = _registries[loop] = Registry()
    return registry


# -- Django's side: when to send them -----------------------------------------------------

_WATCHED = frozenset({"password", "is_active"})


def connect_signals() -> None:
    """Send revocations on logout, password change and deactivation (``AppConfig.ready``)."""
    from django.conf import settings
    from django.contrib.auth.signals import user_logged_out
    from django.db.models.signals import post_save, pre_save

    user_logged_out.connect(_on_logout, dispatch_uid="taskstream.hub.revocation.logout")
    pre_save.connect(_before_user_save, sender=settings.AUTH_USER_MODEL,
                     dispatch_uid="taskstream.hub.revocation.pre_save")
    post_save.connect(_after_user_save, sender=settings.AUTH_USER_MODEL,
                      dispatch_uid="taskstream.hub.revocation.post_save")


def _on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if user is not None and session is not None:
        revoke_session(user_id=user.pk, session_key=session.session_key)


def _before_user_save(sender: Any, instance: Any, update_fields: Any = None,
                      **kwargs: Any) -> None:
    # Logins save last_login alone: no query for them.
    if instance.pk is None or (update_fields is not None and not _WATCHED & set(update_fields)):
        return
    old = sender._default_manager.filter(pk=instance.pk).values("password", "is_active").first()
    if old is not None and (old["password"] != instance.password
                            or old["is_active"] != instance.is_active):
        instance._taskstream_recheck = True


def _after_user_save(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    if instance.__dict__.pop("_taskstream_recheck", False):
        from django.db import transaction

        user_id = instance.pk
        transaction.on_commit(lambda: recheck_user(user_id=user_id))
