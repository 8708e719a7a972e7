"""With DEBUG off: the demo account is refused, HSTS and secure cookies are on, and the
start-up checks refuse settings without them."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings

from example.auth import DEMO_USERNAME
from example.security import check_production_security
from taskstream.testing import ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def test_demo_account_is_refused_when_debug_is_off(make_user: Callable[..., Any]) -> None:
    demo = make_user(username=DEMO_USERNAME)
    demo.set_password("demo")
    demo.save()
    signed_in = Client()
    with override_settings(DEBUG=True):  # the dev stack
        assert Client().login(username="demo", password="demo") is True
        signed_in.force_login(demo)
        assert signed_in.get("/").status_code == 200
    with override_settings(DEBUG=False):
        assert Client().login(username="demo", password="demo") is False
        # A session made while DEBUG was on ends too.
        assert signed_in.get("/").status_code == 302


def test_production_checks_name_each_missing_protection() -> None:
    middleware = [m for m in settings.MIDDLEWARE if "ContentSecurityPolicy" not in m]
    with override_settings(DEBUG=False, SECURE_HSTS_SECONDS=0, SESSION_COOKIE_SECURE=False,
                           CSRF_COOKIE_SECURE=False, MIDDLEWARE=middleware):
        ids = [e.id for e in check_production_security()]
    assert ids == ["example.E001", "example.E002", "example.E003", "example.E004"]
    with override_settings(DEBUG=True, SECURE_HSTS_SECONDS=0):
        assert check_production_security() == []


def production_env(server_env: dict[str, str]) -> dict[str, str]:
    return {**server_env, "DEBUG": "0", "SECRET_KEY": "test-" + "k" * 50,
            "ALLOWED_HOSTS": "127.0.0.1"}


def test_production_settings_pass_their_checks(server_env: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, "-m", "django", "check", "--fail-level", "ERROR"],
                            cwd=ROOT, env=production_env(server_env), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_debug_off_server_sends_hsts_and_secure_cookies(
        start_server: Callable[..., ServerProcess], server_env: dict[str, str]) -> None:
    server = start_server(**{k: v for k, v in production_env(server_env).items()
                             if k not in server_env or server_env[k] != v})
    # As behind a TLS-terminating proxy.
    request = urllib.request.Request(server.http_url + "/login/",
                                     headers={"X-Forwarded-Proto": "https"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
        cookies = response.headers.get_all("Set-Cookie")
        assert "content-security-policy" in {k.lower() for k in response.headers}
    assert cookies and all("Secure" in c for c in cookies), cookies
