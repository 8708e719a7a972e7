"""Who is on the socket: the Django session cookie, or a short-lived signed token.

Tokens come from ``POST /api/ws-token/`` and are sent in the first frame, never in
the URL (URLs end up in logs). A token carries the user id, a hash of the user's
session auth hash (changing the password revokes outstanding tokens) and a one-way name
of the session that asked for it (logging out of that session revokes them too).
"""

from __future__ import annotations

import hashlib
from http.cookies import SimpleCookie
from typing import Any

from django.conf import settings
from django.core import signing

from taskstream.conf import conf
from taskstream.hub.revocation import session_hash, session_revoked

_SALT = "taskstream.hub.ws-token"


def _auth_hash(user: Any) -> str:
    return hashlib.sha256(user.get_session_auth_hash().encode()).hexdigest()[:16]


def make_token(user: Any, *, session_key: str | None = None) -> str:
    """A signed token naming ``user``, valid for ``TOKEN_MAX_AGE`` seconds.

    ``session_key``: the session that asks for it; its logout revokes the token.
    """
    payload = {"u": str(user.pk), "h": _auth_hash(user), "s": session_hash(session_key)}
    return signing.dumps(payload, salt=_SALT, compress=False)


def user_from_token(token: str) -> Any | None:
    """The active user a valid, unexpired token names, else ``None``. Sync: touches the DB."""
    identity = identity_from_token(token)
    return identity[0] if identity is not None else None


def identity_from_token(token: str) -> tuple[Any, str] | None:
    """``(user, session hash)`` of a valid, unexpired, unrevoked token, else ``None``.

    Sync: touches the database and Redis.
    """
    from django.contrib.auth import get_user_model

    try:
        payload = signing.loads(token, salt=_SALT, max_age=conf.TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    user_id = payload.get("u")
    if not isinstance(user_id, str):
        return None
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    if user is None or not user.is_active or payload.get("h") != _auth_hash(user):
        return None
    session = payload.get("s")
    session = session if isinstance(session, str) else ""
    if session_revoked(session):
        return None
    return user, session


def session_key_from_headers(headers: dict[bytes, bytes]) -> str | None:
    raw = headers.get(b"cookie")
    if not raw:
        return None
    cookie: SimpleCookie = SimpleCookie()
    try:
        cookie.load(raw.decode("latin-1"))
    except Exception:
        return None
    morsel = cookie.get(settings.SESSION_COOKIE_NAME)
    return morsel.value if morsel is not None else None


def user_from_session(session_key: str | None) -> Any:
    """The user of a Django session (``AnonymousUser`` when none). Sync: touches the DB.

    Remembered per process for a reconnect: :mod:`taskstream.hub.sessions`.
    """
    from taskstream.hub.sessions import user_from_session as remembered_user

    return remembered_user(session_key)
