"""The topic registry: which topics exist, who may read them, what clients may publish.

A topic is ``<kind>`` or ``<kind>:<key>`` (``user:42``, ``job:<uuid>``, ``room:lobby``,
``ops``). Apps register their kinds in ``AppConfig.ready()``; a host project adds its
own the same way::

    from taskstream.hub import register_topic

    async def may_read_board(user, key):
        return await Board.objects.filter(slug=key, members=user).aexists()

    register_topic("board", authorize=may_read_board, key_pattern=r"[a-z0-9-]{1,50}")
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from taskstream.exceptions import HubUsageError, ProtocolError
from taskstream.hub.protocol import UNKNOWN_TOPIC

User = Any  # a Django user or AnonymousUser; Any keeps this module free of the app registry
Authorize = Callable[[User, str], bool | Awaitable[bool]]


@dataclass(frozen=True)
class Publication:
    """What a client ``publish`` turns into after the topic's hook accepted it."""

    event: str
    data: dict[str, Any]
    ephemeral: bool = False


# on_publish(user, key, event, data) -> Publication, or raise ProtocolError to refuse.
OnPublish = Callable[[User, str, str, dict[str, Any]], Awaitable[Publication]]
# on_join / on_leave(user, key, connection_id): presence and similar bookkeeping.
OnMembership = Callable[[User, str, str], Coroutine[Any, Any, dict[str, Any] | None]]
# forget(key): drop what the kind cached about ``key`` before access is checked again.
Forget = Callable[[str], None]


@dataclass(frozen=True)
class TopicKind:
    name: str
    authorize: Authorize
    key_pattern: re.Pattern[str] | None
    client_events: frozenset[str] = frozenset()
    on_publish: OnPublish | None = None
    on_join: OnMembership | None = None
    on_leave: OnMembership | None = None
    forget: Forget | None = None

    async def may_read(self, user: User, key: str) -> bool:
        allowed = self.authorize(user, key)
        if inspect.isawaitable(allowed):
            allowed = await allowed
        return bool(allowed)


_registry: dict[str, TopicKind] = {}
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def register_topic(
    name: str,
    *,
    authorize: Authorize,
    key_pattern: str | None = r"[A-Za-z0-9_.@:-]{1,200}",
    client_events: frozenset[str] | set[str] = frozenset(),
    on_publish: OnPublish | None = None,
    on_join: OnMembership | None = None,
    on_leave: OnMembership | None = None,
    forget: Forget | None = None,
) -> TopicKind:
    """Register a topic kind. ``key_pattern=None`` means the bare topic (``ops``).

    ``authorize(user, key)`` may be a plain function (it runs on the event loop, so no
    database access) or ``async def`` (use the async ORM). Registering a name twice
    replaces the earlier kind, so a host project can override a built-in rule.
    ``forget(key)`` drops whatever the kind caches about a key; it runs before open
    subscriptions are checked again (:func:`taskstream.hub.revocation.reauthorize`).
    """
    if not _KIND_RE.match(name):
        raise HubUsageError(f"topic kind must match {_KIND_RE.pattern}, got {name!r}")
    if client_events and on_publish is None:
        raise HubUsageError("client_events need an on_publish hook that validates them")
    kind = TopicKind(
        name=name,
        authorize=authorize,
        key_pattern=re.compile(key_pattern) if key_pattern is not None else None,
        client_events=frozenset(client_events),
        on_publish=on_publish,
        on_join=on_join,
        on_leave=on_leave,
        forget=forget,
    )
    _registry[name] = kind
    return kind


def unregister_topic(name: str) -> None:
    _registry.pop(name, None)


def resolve(topic: str) -> tuple[TopicKind, str]:
    """Find the kind of ``topic`` and its key, or raise ``unknown_topic``."""
    name, sep, key = topic.partition(":")
    kind = _registry.get(name)
    if kind is None:
        raise ProtocolError(UNKNOWN_TOPIC, f"no topic kind {name!r}")
    if kind.key_pattern is None:
        if sep:
            raise ProtocolError(UNKNOWN_TOPIC, f"topic {name!r} takes no key")
    elif not sep or not kind.key_pattern.fullmatch(key):
        raise ProtocolError(UNKNOWN_TOPIC, f"malformed {name!r} topic key")
    return kind, key


def registered() -> dict[str, TopicKind]:
    return dict(_registry)


# Built-in kinds --------------------------------------------------------------------------


def _own_user_topic(user: User, key: str) -> bool:
    return bool(user.is_authenticated and str(user.pk) == key)


def _staff_only(user: User, key: str) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def register_builtin_topics() -> None:
    register_topic("user", authorize=_own_user_topic, key_pattern=r"[0-9]{1,20}")
    register_topic("ops", authorize=_staff_only, key_pattern=None)
