"""The user of a session cookie, cheaply enough for a reconnect storm.

A handshake's cookie costs Django two queries (the session row, then the user), a
signed-payload decode and a hop to the database thread (which every handshake of the
process queues for). Sockets come back by the thousand when a server process dies or Redis
blinks, each with the session it had a minute ago, so each process remembers session key →
(user id, session auth hash, backend, the user):

* for :data:`FRESH` seconds the user is taken from memory (no query, no thread hop:
  :func:`fresh_user`). Logout, password change and deactivation drop the entries on every
  process at once (:func:`forget_session`, :func:`forget_user`, called by the revocation
  channel; a process whose Pub/Sub connection dropped forgets everything, since it may have
  missed one);
* up to :data:`TTL` seconds it costs ONE query: the user row, with an ``EXISTS`` on the
  session row (not logged out, not expired) in the same statement, and the user's current
  auth hash compared with the remembered one (a password change shows even if its message
  was lost).

A user's other fields (``is_staff``) may be up to :data:`FRESH` seconds old for a new
socket, as they are for a socket opened that long ago.

Only for the database session engines (``db``, ``cached_db``: a logout deletes the row the
query checks) and backends that are :class:`~django.contrib.auth.backends.ModelBackend`
(``get_user`` is a primary-key lookup plus ``user_can_authenticate``); anything else takes
Django's own path every time.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace
from typing import Any

from django.conf import settings

# Seconds a remembered user is used as is, then seconds it is remembered at all (each use
# after FRESH checks the session row and the user in one query).
FRESH = 10.0
TTL = 300.0
# Sessions remembered per process (the oldest go first): ~200 bytes each.
MAX_ENTRIES = 50_000

_DB_ENGINES = frozenset({"django.contrib.sessions.backends.db",
                         "django.contrib.sessions.backends.cached_db"})


@dataclass(frozen=True, slots=True)
class Remembered:
    user_id: str
    auth_hash: str
    backend: str
    digest: str  # revocation.session_hash(key): what a logout message names
    user: Any
    fresh_until: float
    expires: float


_by_key: dict[str, Remembered] = {}
_keys_by_user: dict[str, set[str]] = {}
_key_by_digest: dict[str, str] = {}


def session_hash(session_key: str | None) -> str:
    """A short, one-way name for a session (what sockets and tokens remember of it)."""
    if not session_key:
        return ""
    return hashlib.sha256(f"taskstream.session:{session_key}".encode()).hexdigest()[:24]


def forget_user(user_id: Any) -> None:
    """Drop every remembered session of ``user_id`` (password change, deactivation)."""
    for key in _keys_by_user.pop(str(user_id), ()):
        _by_key.pop(key, None)


def forget_session(digest: str) -> None:
    """Drop the remembered session whose one-way name is ``digest`` (logout)."""
    key = _key_by_digest.get(digest)
    if key is not None:
        _drop(key)


def forget_all() -> None:
    _by_key.clear()
    _keys_by_user.clear()
    _key_by_digest.clear()


def remembered(session_key: str) -> Remembered | None:
    """What this process remembers of ``session_key`` (for tests and metrics)."""
    return _by_key.get(session_key)


def _drop(key: str) -> None:
    entry = _by_key.pop(key, None)
    if entry is not None:
        _key_by_digest.pop(entry.digest, None)
        keys = _keys_by_user.get(entry.user_id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del _keys_by_user[entry.user_id]


def fresh_user(session_key: str | None) -> Any | None:
    """The user of ``session_key`` from memory if remembered for under :data:`FRESH`
    seconds, else None. No I/O: safe on the event loop."""
    entry = _by_key.get(session_key) if session_key else None
    if entry is None or entry.fresh_until <= time.monotonic():
        return None
    return entry.user


def _remember(key: str, user: Any, backend: str) -> None:
    while len(_by_key) >= MAX_ENTRIES:
        _drop(next(iter(_by_key)))
    _drop(key)
    user_id = str(user.pk)
    digest = session_hash(key)
    now = time.monotonic()
    _by_key[key] = Remembered(user_id, user.get_session_auth_hash(), backend, digest, user,
                              now + FRESH, now + TTL)
    _keys_by_user.setdefault(user_id, set()).add(key)
    _key_by_digest[digest] = key


def _cacheable(backend_path: str) -> Any | None:
    """The backend at ``backend_path`` if its ``get_user`` is a pk lookup, else None."""
    from django.contrib.auth import load_backend
    from django.contrib.auth.backends import ModelBackend

    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    backend = load_backend(backend_path)
    return backend if isinstance(backend, ModelBackend) else None


def _from_remembered(key: str, entry: Remembered) -> Any | None:
    """The user, in one query, if the session still stands and nothing changed; else None
    (the entry is dropped and the caller takes the full path)."""
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session
    from django.db.models import Exists
    from django.utils import timezone
    from django.utils.crypto import constant_time_compare

    backend = _cacheable(entry.backend)
    if backend is None:
        _drop(key)
        return None
    live = Session.objects.filter(session_key=key, expire_date__gt=timezone.now())
    user = (get_user_model()._default_manager.filter(pk=entry.user_id)
            .annotate(_taskstream_session=Exists(live)).first())
    if (user is None or not user._taskstream_session
            or not backend.user_can_authenticate(user)
            or not constant_time_compare(user.get_session_auth_hash(), entry.auth_hash)):
        _drop(key)
        return None
    user.backend = entry.backend
    return user


def user_from_session(session_key: str | None) -> Any:
    """The user of a Django session (``AnonymousUser`` when none). Sync: touches the DB."""
    from django.contrib.auth import BACKEND_SESSION_KEY, get_user
    from django.contrib.auth.models import AnonymousUser

    if not session_key:
        return AnonymousUser()
    cacheable = settings.SESSION_ENGINE in _DB_ENGINES
    entry = _by_key.get(session_key) if cacheable else None
    if entry is not None:
        if entry.expires > time.monotonic():
            user = _from_remembered(session_key, entry)
            if user is not None:
                _remember(session_key, user, entry.backend)  # fresh again
                return user
        else:
            _drop(session_key)
    engine = import_module(settings.SESSION_ENGINE)
    session = engine.SessionStore(session_key)
    # django.contrib.auth.get_user only reads request.session.
    user = get_user(SimpleNamespace(session=session))  # type: ignore[arg-type]
    if cacheable and user.is_authenticated:
        backend = session.get(BACKEND_SESSION_KEY, "")
        if _cacheable(backend) is not None:
            _remember(session_key, user, backend)
    return user
