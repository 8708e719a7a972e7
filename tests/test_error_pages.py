"""The demo's 403 and 404 pages: the site's own layout, not Django's bare text."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for(django_user_model: Any, settings: Any) -> Any:
    settings.DEBUG = False  # Django shows its technical pages while DEBUG is on

    def make(**fields: Any) -> Client:
        client = Client()
        client.force_login(django_user_model.objects.create_user(username="u", **fields))
        return client

    return make


def test_404_is_the_sites_page(client_for: Any) -> None:
    response = client_for().get("/no-such-page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "This page does not exist" in html and "example/site.css" in html
    assert 'aria-label="Main"' in html  # the navigation is there to find the way back


def test_a_non_staff_user_gets_the_sites_403_with_the_reason(client_for: Any) -> None:
    response = client_for().get("/schedules/")
    html = response.content.decode()
    assert response.status_code == 403
    assert "You may not open this page" in html and "for staff accounts" in html


def test_favicon(client_for: Any) -> None:
    client = client_for()
    assert 'rel="icon" href="/static/example/favicon.svg"' in client.get("/").content.decode()
    assert client.get("/favicon.ico")["Location"] == "/static/example/favicon.svg"
