"""The WebSocket handshake: is the origin allowed, and who is on the socket.

Runs before the socket is accepted; the connection accepts or refuses on its answer.
"""

from __future__ import annotations

from typing import Any

from taskstream.hub.auth import session_key_from_headers, user_from_session
from taskstream.hub.database import db_call
from taskstream.hub.origin import origin_allowed
from taskstream.hub.revocation import session_hash
from taskstream.hub.sessions import fresh_user

Scope = dict[str, Any]


class Refused(Exception):
    """The handshake is refused with an HTTP status (403: foreign origin)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def authenticate(scope: Scope) -> tuple[Any, str]:
    """The user of a handshake (``AnonymousUser`` when none) and the one-way name of its
    session (``""`` when none; its logout closes the socket), or raise :class:`Refused`."""
    from django.contrib.auth.models import AnonymousUser

    headers = dict(scope.get("headers") or [])
    if not origin_allowed(headers):
        raise Refused(403)
    scoped = scope.get("user")
    if scoped is not None and getattr(scoped, "is_authenticated", False):
        session = scope.get("session")
        return scoped, session_hash(getattr(session, "session_key", None))
    if b"origin" not in headers:  # not a browser: cookies are not trusted, use `auth`
        return AnonymousUser(), ""
    key = session_key_from_headers(headers)
    # A reconnect storm brings back sessions seen seconds ago: no database thread hop.
    user: Any = fresh_user(key)
    if user is None:
        user = await db_call(user_from_session, key)
    return user, session_hash(key) if user.is_authenticated else ""
