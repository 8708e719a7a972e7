"""The demo's authentication backend: taskstream's throttled ModelBackend, and the demo
account ``demo``/``demo`` refused whenever DEBUG is off (sign-in and existing sessions),
so switching a database from a dev stack to production does not leave it open."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from taskstream.throttle import ThrottleBackend

DEMO_USERNAME = "demo"


class DemoBackend(ThrottleBackend):
    def user_can_authenticate(self, user: Any) -> bool:
        if not settings.DEBUG and user.get_username() == DEMO_USERNAME:
            return False
        return super().user_can_authenticate(user)
