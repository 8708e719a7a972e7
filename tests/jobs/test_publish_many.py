"""One job event, two topics, one round trip: each topic's log gets it, in order."""

from __future__ import annotations

import json

import pytest

from taskstream.exceptions import InvalidTopic
from taskstream.hub.batch import publish_many
from taskstream.hub.cursors_api import latest_cursor
from taskstream.hub.redis import sync_client


def test_each_topic_gets_its_own_entry_and_cursor():
    cursors = publish_many(["job:a", "user:1"], "job.started", {"n": 1})
    assert len(cursors) == 2  # one per topic (each topic's stream numbers its own entries)
    assert latest_cursor("job:a") == cursors[0] and latest_cursor("user:1") == cursors[1]
    again = publish_many(["job:a", "user:1"], "job.progress", {"n": 2})
    assert [c > old for c, old in zip(again, cursors, strict=True)] == [True, True]


def test_survives_redis_forgetting_its_scripts():
    publish_many(["job:b"], "job.started", {})
    sync_client().script_flush()
    cursor = publish_many(["job:b"], "job.progress", {"ok": True})[0]
    assert latest_cursor("job:b") == cursor


def test_bad_topics_are_refused_before_anything_is_sent():
    before = latest_cursor("job:c")
    with pytest.raises(InvalidTopic):
        publish_many(["job:c", "bad topic!"], "job.started", {})
    assert latest_cursor("job:c") == before
    assert json.loads(json.dumps(before))  # still a plain cursor string
