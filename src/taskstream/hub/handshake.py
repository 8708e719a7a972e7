"""The WebSocket handshake: is the origin allowed, and who is on the socket.

Runs before the socket is accepted; the connection accepts or refuses on its answer.
"""

from __future__ import annotations

from typing import Any

from taskstream.hub.auth import session_key_from_headers, user_from_session
from taskstream.hub.database import db_call
from taskstream.hub.origin import origin_allowed

Scope = dict[str, Any]


class Refused(Exception):
    """The handshake is refused with an HTTP status (403: foreign origin)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


async def authenticate(scope: Scope) -> Any:
    """The user of a handshake (``AnonymousUser`` when none), or raise :class:`Refused`."""
    from django.contrib.auth.models import AnonymousUser

    headers = dict(scope.get("headers") or [])
    if not origin_allowed(headers):
        raise Refused(403)
    scoped = scope.get("user")
    if scoped is not None and getattr(scoped, "is_authenticated", False):
        return scoped
    if b"origin" not in headers:  # not a browser: cookies are not trusted, use `auth`
        return AnonymousUser()
    return await db_call(user_from_session, session_key_from_headers(headers))
