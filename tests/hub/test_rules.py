"""Pure rules: topic registry, origin check, settings checks."""

from __future__ import annotations

import pytest
from django.test import override_settings

from taskstream.checks import check_settings
from taskstream.exceptions import HubUsageError, ProtocolError
from taskstream.hub import register_topic, resolve, unregister_topic
from taskstream.hub.origin import origin_allowed


def test_builtin_topics_resolve_and_reject_malformed_keys():
    kind, key = resolve("user:42")
    assert kind.name == "user" and key == "42"
    assert resolve("ops")[0].name == "ops"
    for bad in ("user:abc", "user", "ops:1", "nope:1"):
        with pytest.raises(ProtocolError) as info:
            resolve(bad)
        assert info.value.code == "unknown_topic"


def test_host_project_can_register_a_topic_kind():
    register_topic("board", authorize=lambda user, key: key == "open", key_pattern=r"[a-z]+")
    try:
        kind, key = resolve("board:open")
        assert kind.authorize(None, key) is True
    finally:
        unregister_topic("board")
    with pytest.raises(ProtocolError):
        resolve("board:open")


def test_client_events_need_a_validating_hook():
    with pytest.raises(HubUsageError):
        register_topic("chat", authorize=lambda u, k: True, client_events={"message"})


@override_settings(ALLOWED_HOSTS=["app.example.com"], TASKSTREAM={
    "REDIS_URL": "redis://x", "ALLOWED_ORIGINS": ["https://partner.example.org"]})
def test_origin_rules():
    def ok(origin: str | None, host: str = "app.example.com") -> bool:
        headers = {b"host": host.encode()}
        if origin is not None:
            headers[b"origin"] = origin.encode()
        return origin_allowed(headers)

    assert ok("https://app.example.com")
    assert ok("https://partner.example.org")
    assert ok(None)  # not a browser; cookies are then ignored by the endpoint
    assert not ok("https://evil.example.com")
    assert not ok("null")
    assert not ok("https://app.example.com", host="evil.example.com")  # DNS rebinding
    assert not ok("https://app.example.com.evil.net")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"REDIS_URL": None}, "taskstream.E001"),
        ({"REDIS_URL": "http://x"}, "taskstream.E001"),
        ({"ALLOWED_ORIGINS": "https://x"}, "taskstream.E002"),
        ({"LOG_MAXLEN": 0}, "taskstream.E003"),
        ({"HEARTBEAT": -1}, "taskstream.E012"),
        ({"NOT_A_SETTING": 1}, "taskstream.E014"),
    ],
)
def test_bad_settings_fail_the_system_check(overrides, code):
    with override_settings(TASKSTREAM={"REDIS_URL": "redis://localhost", **overrides}):
        assert code in [e.id for e in check_settings()]


def test_default_settings_pass_the_system_check():
    with override_settings(TASKSTREAM={"REDIS_URL": "redis://localhost"}):
        assert check_settings() == []
