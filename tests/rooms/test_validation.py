"""The one validation path every message goes through, and the shared rate limit."""

from __future__ import annotations

import secrets

import pytest
from django.test import override_settings
from hypothesis import given
from hypothesis import strategies as st

from taskstream.rooms.exceptions import MessageInvalid, MessageTooLong
from taskstream.rooms.ratelimit import message_slot_take
from taskstream.rooms.services import message_body_clean


def test_body_is_stripped():
    assert message_body_clean("  hi there \n") == "hi there"


@pytest.mark.parametrize("body", ["", " ", "\n\t", None, 3, ["x"], {"x": 1}, "a\x00b"])
def test_invalid_bodies(body):
    with pytest.raises(MessageInvalid):
        message_body_clean(body)


def test_length_counts_characters_not_bytes():
    assert message_body_clean("€" * 4000) == "€" * 4000
    with pytest.raises(MessageTooLong):
        message_body_clean("a" * 4001)


@given(st.text(max_size=5000))
def test_any_text_is_either_accepted_within_limits_or_refused(body):
    try:
        cleaned = message_body_clean(body)
    except (MessageInvalid, MessageTooLong):
        return
    assert cleaned and cleaned == cleaned.strip() and len(cleaned) <= 4000


def test_rate_limit_refuses_the_eleventh_message_in_the_window(redis_url):
    user_id = int.from_bytes(secrets.token_bytes(4), "big")
    assert [message_slot_take(user_id) for _ in range(10)] == [0.0] * 10
    wait = message_slot_take(user_id)
    assert 0 < wait <= 10
    assert message_slot_take(user_id + 1) == 0.0  # per user


def test_rate_limit_setting(redis_url, settings):
    user_id = int.from_bytes(secrets.token_bytes(4), "big")
    with override_settings(TASKSTREAM={**settings.TASKSTREAM, "ROOM_MESSAGE_RATE": 2}):
        assert message_slot_take(user_id) == 0.0
        assert message_slot_take(user_id) == 0.0
        assert message_slot_take(user_id) > 0
