"""Sign-in and sign-up throttles on the demo site, and one welcome e-mail per address."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from taskstream.testing import ServerProcess
from tests.integration.test_health import Browser

pytestmark = pytest.mark.django_db(transaction=True)

LIMITS = {"LOGIN_FAILURES_PER_ACCOUNT": 3, "LOGIN_ATTEMPTS_PER_CLIENT": 8,
          "SIGNUPS_PER_CLIENT": 3}


@pytest.fixture
def server(start_server: Callable[..., ServerProcess]) -> ServerProcess:
    # A key prefix of its own: the throttles' counts start at zero for each test.
    return start_server(TASKSTREAM_JSON=json.dumps(LIMITS),
                        TASKSTREAM_KEY_PREFIX=f"tsthrottle{secrets.token_hex(4)}:")


def _login(browser: Browser, username: str, password: str) -> tuple[int, str]:
    status, _, html = browser.post_form("/login/", {"username": username,
                                                    "password": password}, follow=False)
    return status, html


def test_wrong_passwords_then_the_right_one_is_refused(server: ServerProcess,
                                                       make_user: Callable[..., Any]) -> None:
    user = make_user()
    browser = Browser(server.http_url)
    for _ in range(LIMITS["LOGIN_FAILURES_PER_ACCOUNT"]):
        status, html = _login(browser, user.username, "wrong")
        assert status == 200 and "correct username and password" in html
    status, html = _login(browser, user.username, f"pw-{user.username}")
    assert status == 429 and "Too many sign-in attempts; try again in" in html
    assert browser.request("/", follow=False)[0] == 302  # still signed out
    # Another account from the same client is not locked by that one's failures.
    other = make_user()
    assert _login(browser, other.username, f"pw-{other.username}")[0] == 302


def test_one_client_trying_many_accounts_is_throttled(server: ServerProcess) -> None:
    browser = Browser(server.http_url)
    statuses = [_login(browser, f"nobody-{i}", "guess")[0]
                for i in range(LIMITS["LOGIN_ATTEMPTS_PER_CLIENT"] + 1)]
    assert statuses == [200] * LIMITS["LOGIN_ATTEMPTS_PER_CLIENT"] + [429]


def test_signup_is_throttled_per_client_and_does_not_say_a_name_exists(
        server: ServerProcess, make_user: Callable[..., Any]) -> None:
    taken = make_user(username="Taken-Name")
    browser = Browser(server.http_url)
    password = secrets.token_urlsafe(12)
    fields = {"password1": password, "password2": password}
    status, _, html = browser.post_form("/signup/", {"username": "taken-name", **fields})
    assert status == 200 and "This username is not available; pick another." in html
    assert "already exists" not in html
    assert get_user_model().objects.filter(username__iexact="taken-name").get() == taken

    for i in range(LIMITS["SIGNUPS_PER_CLIENT"] - 1):
        signup = Browser(server.http_url)  # signed out, same client address
        status, url, _ = signup.post_form("/signup/", {"username": f"new-{i}", **fields})
        assert status == 200 and url == f"{server.http_url}/"
    status, _, html = Browser(server.http_url).post_form("/signup/",
                                                         {"username": "one-more", **fields})
    assert status == 429 and "Too many sign-ups from your address" in html
    assert not get_user_model().objects.filter(username="one-more").exists()


def test_one_welcome_email_per_address(make_user: Callable[..., Any]) -> None:
    from taskstream.notifications.services import email_welcome_send

    address = f"victim-{secrets.token_hex(3)}@example.com"
    first = make_user(email=address)
    assert email_welcome_send(user_id=first.pk) is True
    # Thirty sign-ups naming the same address (any case) send it nothing more.
    for _ in range(3):
        assert email_welcome_send(user_id=make_user(email=address.upper()).pk) is False
    assert email_welcome_send(user_id=make_user(email="x" + address).pk) is True
