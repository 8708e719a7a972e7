"""The frame parser: every input is either a frame or a ProtocolError with a wire code."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskstream.exceptions import ProtocolError
from taskstream.hub import protocol as p

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8),
                                                                       children, max_size=4),
    max_leaves=12,
)
frame_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["subscribe", "unsubscribe", "publish", "ping", "auth", "x", ""])},
    optional={"topic": json_values | st.sampled_from(["user:1", "ops", "room:a", "job:x"]),
              "since": json_values, "id": json_values, "event": json_values,
              "data": json_values, "token": json_values},
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), json_values.map(json.dumps), frame_like.map(json.dumps)))
def test_parser_never_raises_anything_but_protocol_errors(text):
    try:
        frame = p.parse_client_frame(text)
    except ProtocolError as exc:
        assert exc.code in p.ERROR_CODES and exc.message
    else:
        assert frame.type in p.CLIENT_TYPES


def test_parses_each_client_frame():
    assert p.parse_client_frame('{"type":"ping","id":3}') == p.Ping(type="ping", id=3)
    sub = p.parse_client_frame('{"type":"subscribe","topic":"user:1","since":"ab-1-0","id":"x"}')
    assert isinstance(sub, p.Subscribe) and sub.since == "ab-1-0" and sub.id == "x"
    pub = p.parse_client_frame('{"type":"publish","topic":"room:a","event":"message",'
                               '"data":{"body":"hi"}}')
    assert isinstance(pub, p.Publish) and pub.data == {"body": "hi"}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{", "bad_frame"),
        ('"ping"', "bad_frame"),
        ("[" * 100_000, "bad_frame"),
        ('{"type":"ping","id":-1}', "bad_frame"),
        ('{"type":"ping","id":true}', "bad_frame"),
        ('{"type":"subscribe","topic":"Upper:1"}', "bad_frame"),
        ('{"type":"subscribe","topic":"user:' + "1" * 300 + '"}', "bad_frame"),
        ('{"type":"publish","topic":"room:a","event":"message","data":[]}', "bad_frame"),
        ('{"type":7}', "unknown_type"),
    ],
)
def test_rejects_with_the_right_code(text, code):
    with pytest.raises(ProtocolError) as info:
        p.parse_client_frame(text)
    assert info.value.code == code


def test_request_id_is_echoed_only_when_sane():
    assert p.request_id('{"id": 5, "type": 1}') == 5
    assert p.request_id('{"id": "x" }') == "x"
    assert p.request_id('{"id": true}') is None
    assert p.request_id('{"id": "' + "x" * 100 + '"}') is None
    assert p.request_id("garbage") is None


def test_event_frame_is_valid_json_with_and_without_cursor():
    frame = json.loads(p.event_frame('"user:1"', "ab-1-0", '"x.y"', '{"a":"<b>"}', "2026-01-01Z"))
    assert frame == {"type": "event", "topic": "user:1", "cursor": "ab-1-0", "event": "x.y",
                     "data": {"a": "<b>"}, "ts": "2026-01-01Z"}
    assert "cursor" not in json.loads(p.event_frame('"t"', None, '"typing"', "{}", "z"))
