"""/healthz, /readyz and the demo site's auth pages, over HTTP against a real server."""

from __future__ import annotations

import http.cookiejar
import json
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from taskstream.testing import RedisProcess, ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Browser:
    """Just enough of a browser: cookies, CSRF tokens from forms, redirects on demand."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        cookies = urllib.request.HTTPCookieProcessor(self.cookies)
        self.follow = urllib.request.build_opener(cookies)
        self.stay = urllib.request.build_opener(cookies, _NoRedirect)

    def request(self, path: str, data: dict[str, str] | None = None, *,
                follow: bool = True) -> tuple[int, str, str]:
        """``(status, final URL or Location, body)``."""
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        opener = self.follow if follow else self.stay
        try:
            with opener.open(self.base + path, body, timeout=10) as response:
                return response.status, response.url, response.read().decode()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.headers.get("Location", ""), exc.read().decode()

    def form_token(self, path: str) -> str:
        status, _, html = self.request(path)
        assert status == 200, html
        found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        assert found, f"no CSRF token in {path}"
        return found.group(1)

    def post_form(self, path: str, fields: dict[str, str], *, page: str | None = None,
                  **kwargs: Any) -> tuple[int, str, str]:
        """Submit the form at ``path``, found on ``page`` (default: ``path`` itself)."""
        token = self.form_token(page or path)
        return self.request(path, {"csrfmiddlewaretoken": token, **fields}, **kwargs)


def get_json(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_healthz_answers_while_the_process_is_up(hub_server: ServerProcess) -> None:
    assert get_json(f"{hub_server.http_url}/healthz") == (200, {"status": "ok"})


def test_readyz_lists_every_check_when_all_backends_answer(hub_server: ServerProcess) -> None:
    status, body = get_json(f"{hub_server.http_url}/readyz")
    assert status == 200, body
    assert body == {"status": "ok", "checks": {"database": {"ok": True}, "redis": {"ok": True},
                                               "broker": {"ok": True}}}


def test_readyz_is_503_naming_redis_when_redis_is_unreachable(start_server: Any) -> None:
    # The server refuses to start without its Redis; here Redis dies while it runs.
    redis = RedisProcess().start()
    try:
        server = start_server(REDIS_URL=redis.url)
        assert get_json(f"{server.http_url}/readyz")[0] == 200
        redis.stop()
        status, body = get_json(f"{server.http_url}/readyz")
    finally:
        redis.close()
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"]["ok"] is False
    assert "Connection refused" in body["checks"]["redis"]["error"]  # DEBUG shows why
    assert body["checks"]["database"] == {"ok": True}
    # Liveness does not depend on Redis: the process itself is fine.
    assert get_json(f"{server.http_url}/healthz")[0] == 200


def test_anonymous_home_redirects_to_login(hub_server: ServerProcess) -> None:
    status, location, _ = Browser(hub_server.http_url).request("/", follow=False)
    assert status == 302
    assert location == "/login/?next=/"


def test_login_page_renders_a_form(hub_server: ServerProcess) -> None:
    status, _, html = Browser(hub_server.http_url).request("/login/")
    assert status == 200
    assert 'name="username"' in html and 'name="password"' in html
    assert "/static/example/site.css" in html


def test_signup_creates_a_user_lands_on_home_and_logout_ends_the_session(
        hub_server: ServerProcess) -> None:
    browser = Browser(hub_server.http_url)
    username = f"new-{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(12)
    status, url, html = browser.post_form(
        "/signup/", {"username": username, "password1": password, "password2": password})
    assert status == 200
    assert url == f"{hub_server.http_url}/"
    assert f"Signed in as {username}" in html
    assert get_user_model().objects.filter(username=username).exists()

    status, location, _ = browser.post_form("/logout/", {}, page="/", follow=False)
    assert status == 302 and location == "/login/"
    assert browser.request("/", follow=False)[:2] == (302, "/login/?next=/")

    status, url, html = browser.post_form("/login/", {"username": username, "password": password})
    assert url == f"{hub_server.http_url}/" and f"Signed in as {username}" in html


def test_signup_with_mismatched_passwords_shows_the_error_and_creates_nobody(
        hub_server: ServerProcess) -> None:
    username = f"new-{secrets.token_hex(3)}"
    status, _, html = Browser(hub_server.http_url).post_form(
        "/signup/", {"username": username, "password1": "Correct-Horse-9",
                     "password2": "Battery-Staple-9"})
    assert status == 200
    assert "didn’t match" in html or "didn't match" in html
    assert not get_user_model().objects.filter(username=username).exists()
