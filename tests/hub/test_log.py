"""The log's exactly-once vs gap decision, against a real Redis through the publish path."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.test import override_settings

from taskstream.exceptions import EventTooLarge, HubUsageError, InvalidTopic
from taskstream.hub import keys, log, publish
from taskstream.hub.cursor import Cursor, parse_cursor
from taskstream.hub.redis import script, sync_client


def read(topic: str, since: str | None) -> log.Replay:
    cursor = parse_cursor(since) if since is not None else None
    keys_, args = log.read_args(topic, cursor)
    raw = script(sync_client(), log.READ_LUA)(keys=keys_, args=args)
    return log.decode_replay(f'"{topic}"', cursor, raw)


def test_replay_after_a_cursor_is_exactly_the_later_events():
    cursors = [publish("user:901", "tick", {"n": n}) for n in range(10)]
    replay = read("user:901", cursors[3])
    assert not replay.gap
    assert [str(Cursor(replay.latest.epoch, sid)) for sid, _ in replay.events] == cursors[4:]
    assert str(replay.latest) == cursors[-1]
    assert read("user:901", cursors[-1]).events == []


def test_empty_topic_cursor_then_events_is_not_a_gap():
    empty = read("user:902", None).latest
    assert str(empty).endswith("-0-0")
    publish("user:902", "tick", {})
    replay = read("user:902", str(empty))
    assert not replay.gap and len(replay.events) == 1


def test_trimmed_history_is_a_gap_but_recent_cursors_are_not():
    with override_settings(TASKSTREAM={**settings.TASKSTREAM, "LOG_MAXLEN": 10}):
        cursors = [publish("user:903", "tick", {"n": n}) for n in range(500)]
        assert read("user:903", cursors[0]).gap
        recent = read("user:903", cursors[-5])
    assert not recent.gap and len(recent.events) == 4


def test_a_busy_topic_drops_events_older_than_log_max_age():
    topic = "user:908"
    with override_settings(TASKSTREAM={**settings.TASKSTREAM, "LOG_MAX_AGE": 2}):
        # More than one stream node (100 entries): trimming by age drops whole nodes.
        burst = [publish(topic, "tick", {"n": n}) for n in range(150)]
        burst_end = int(str(burst[-1]).split("-")[1])
        latest = burst_end
        # Keep the topic busy (each publish renews the log's 2 s life) until its clock is
        # past the burst's age limit plus the once-a-second trim interval.
        while latest < burst_end + 3500:
            time.sleep(0.1)
            latest = int(str(publish(topic, "tick", {"n": -1})).split("-")[1])
        entries = sync_client().xrange(keys.log_key(topic))
    oldest_ms = int(entries[0][0].split(b"-")[0])
    assert oldest_ms > int(str(burst[0]).split("-")[1])  # the burst's first node is gone
    assert read(topic, burst[0]).gap


def test_wiped_log_is_a_gap():
    cursor = publish("user:904", "tick", {})
    client = sync_client()
    # What a restart without disk does:
    client.delete(keys.head_key("user:904"), keys.log_key("user:904"))
    assert read("user:904", cursor).gap


def test_unknown_cursor_in_this_epoch_is_a_gap():
    cursor = publish("user:905", "tick", {})
    epoch = cursor.split("-")[0]
    assert read("user:905", f"{epoch}-1-0").gap


def test_ephemeral_events_are_not_logged():
    before = read("user:906", None).latest
    assert publish("user:906", "typing", {"who": "a"}, ephemeral=True) is None
    assert read("user:906", None).latest == before


def test_publish_rejects_bad_input():
    with pytest.raises(InvalidTopic):
        publish("No Spaces", "x", {})
    with pytest.raises(InvalidTopic):
        publish("user:1", "Bad Event", {})
    with pytest.raises(HubUsageError):
        publish("user:1", "x", ["not", "a", "mapping"])  # type: ignore[arg-type]
    with pytest.raises(EventTooLarge):
        publish("user:1", "x", {"blob": "x" * 70_000})


async def test_sync_publish_in_async_code_is_a_clear_error():
    with pytest.raises(HubUsageError, match="apublish"):
        publish("user:1", "x", {})


def test_apublish_outside_a_loop_is_a_clear_error():
    from taskstream.hub import apublish

    with pytest.raises(HubUsageError, match="publish"):
        apublish("user:1", "x", {})


async def test_apublish_returns_the_cursor():
    from taskstream.hub import apublish

    cursor = await apublish("user:907", "tick", {"n": 1})
    assert cursor is not None and parse_cursor(cursor)


def test_a_keyed_event_is_logged_once_per_topic_and_answers_its_first_cursor():
    import secrets

    mine, other = (f"user:{secrets.randbelow(10**9) + 10**9}" for _ in range(2))
    first = publish_keyed(mine, "tick", {"n": 1}, key="k1")
    again = publish_keyed(mine, "tick", {"n": 1}, key="k1")
    # The same key on another topic is another event, logged there (its cursor may equal
    # `first`: stream ids of two topics can coincide).
    other_topic = publish_keyed(other, "tick", {"n": 1}, key="k1")
    plain = publish(mine, "tick", {"n": 2})
    assert again == first
    assert str(read(other, None).latest) == other_topic
    replay = read(mine, str(read(mine, None).latest).rsplit("-", 2)[0] + "-0-0")
    assert len(replay.events) == 2 and str(replay.latest) == plain


def publish_keyed(topic: str, event: str, data: dict[str, object], *, key: str) -> str:
    from taskstream.hub.batch import publish_calls
    from taskstream.hub.publish import encode_event

    topic_json, event_json, data_json, ts = encode_event(topic, event, data)
    return publish_calls([log.publish_args(topic_json, event_json, data_json, ts, topic,
                                           key)])[0]
