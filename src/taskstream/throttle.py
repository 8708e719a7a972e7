"""Throttles for sign-in and sign-up: sliding windows in Redis, shared by every process.

Why not django-axes: the hub's Redis is already there and shared by every server process,
the same sliding-window limiter (``taskstream.window``) already limits chat messages, and
axes would add models, a migration, a middleware and a lockout table for what is one Lua
call per attempt; it also has nothing for sign-up. Use it with any login view (the
admin's included):

* ``AUTHENTICATION_BACKENDS = ["taskstream.throttle.ThrottleBackend"]`` in place of
  Django's ``ModelBackend`` (it is one, with the throttles in front; put other backends
  after it). Every sign-in attempt takes a slot of the client's budget
  (``LOGIN_ATTEMPTS_PER_CLIENT`` per ``ACCOUNT_THROTTLE_WINDOW``); an account with
  ``LOGIN_FAILURES_PER_ACCOUNT`` failed attempts in the window refuses even the right
  password until the window frees a slot. A refused attempt fails like a wrong password
  (Django's ``authenticate`` returns None) and sets ``request.throttle_wait`` (seconds) so
  a view can say "try again in N s" and answer 429.
* :func:`signup_slot_take` in the sign-up view (``SIGNUPS_PER_CLIENT`` per window).

Keys hold a hash of the username or address, never the value itself.
"""

from __future__ import annotations

import hashlib
from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver
from django.http import HttpRequest

from taskstream.conf import conf
from taskstream.window import window_take


def _key(kind: str, value: str) -> str:
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{conf.KEY_PREFIX}throttle:{kind}:{digest}"


def _window(kind: str, value: str, limit: int, *, take: bool) -> float:
    """Seconds until ``kind``/``value`` may act again (0.0: now); ``take`` counts this act."""
    return window_take(_key(kind, value), limit, conf.ACCOUNT_THROTTLE_WINDOW, take=take)


def client_address(request: HttpRequest | None) -> str:
    """The client's address as the server saw it (behind a proxy: configure the server's
    forwarded-headers trust, e.g. uvicorn's ``--forwarded-allow-ips``)."""
    if request is None:
        return "unknown"
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def signup_slot_take(request: HttpRequest) -> float:
    """Count one sign-up by this client: 0.0 when allowed, else seconds to wait."""
    return _window("signup", client_address(request), conf.SIGNUPS_PER_CLIENT, take=True)


def login_wait(request: HttpRequest | None, username: str) -> float:
    """Count a sign-in attempt by this client and look at the account's failures: 0.0
    when the attempt may go on, else seconds until it may."""
    client = _window("login-client", client_address(request), conf.LOGIN_ATTEMPTS_PER_CLIENT,
                     take=True)
    account = _window("login-account", username.casefold(), conf.LOGIN_FAILURES_PER_ACCOUNT,
                      take=False)
    return max(client, account)


def login_failure_record(username: str) -> None:
    """Count one failed sign-in against the account."""
    _window("login-account", username.casefold(), conf.LOGIN_FAILURES_PER_ACCOUNT, take=True)


class ThrottleBackend(ModelBackend):
    """Django's ModelBackend behind the throttles: an attempt over them is refused before
    any password is checked, and no backend after this one is asked."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None,
                     password: str | None = None, **kwargs: Any) -> Any:
        name = username
        if name is None:
            from django.contrib.auth import get_user_model

            name = kwargs.get(get_user_model().USERNAME_FIELD)
        if name is not None:
            wait = login_wait(request, str(name))
            if wait:
                if request is not None:
                    request.throttle_wait = wait  # type: ignore[attr-defined]
                raise PermissionDenied(f"too many sign-in attempts; retry in {wait:.0f} s")
        return super().authenticate(request, username=username, password=password, **kwargs)


@receiver(user_login_failed, dispatch_uid="taskstream.throttle.login_failed")
def _count_failure(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None,
                   **kwargs: Any) -> None:
    if request is not None and getattr(request, "throttle_wait", None):
        return  # refused by the throttle: not a password guess
    username = credentials.get("username")
    if username:
        login_failure_record(str(username))
