"""The outbox in one process: events go out after commit, in order, once, whatever Redis does."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from taskstream.exceptions import EventTooLarge, HubUsageError
from taskstream.hub import keys
from taskstream.hub.redis import sync_client
from taskstream.models import OutboxEvent
from taskstream.outbox import outbox_publish, outbox_write_topics
from taskstream.outbox.relay import relay_run
from taskstream.testing import RedisProcess

pytestmark = pytest.mark.django_db(transaction=True)


def logged(topic: str) -> list[tuple[str, Any]]:
    """``(event, data)`` of every entry in ``topic``'s log, oldest first."""
    entries = sync_client().xrange(keys.log_key(topic))
    return [(json.loads(f[b"e"]), json.loads(f[b"d"])) for _id, f in entries]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A Redis of this test's own, which the test may stop and start (same port)."""
    redis = RedisProcess().start()
    try:
        with override_settings(TASKSTREAM={**settings.TASKSTREAM, "REDIS_URL": redis.url}):
            yield redis
    finally:
        redis.close()


@pytest.fixture
def relay() -> Iterator[None]:
    """The relay loop in a thread, as ``python -m taskstream.outbox`` runs it."""
    stop = threading.Event()
    thread = threading.Thread(target=relay_run, args=(stop,), kwargs={"poll_interval": 0.05})
    thread.start()
    yield
    stop.set()
    thread.join(10)


def test_an_event_goes_out_right_after_commit_and_its_row_is_gone():
    with transaction.atomic():
        outbox_publish(topic="user:7001", event="thing.done", data={"n": 1})
        assert logged("user:7001") == []  # not before the commit
    assert logged("user:7001") == [("thing.done", {"n": 1})]
    assert not OutboxEvent.objects.exists()


def test_one_event_to_two_topics_is_one_insert_and_one_delete():
    """What a job's state change costs the outbox: one INSERT of both rows in the change's
    transaction, then (no older unsent event of either topic) the publish and one DELETE,
    with no read of the table in between."""
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        keys = outbox_write_topics(topics=("job:7010", "user:7010"), event="thing.done",
                                   data={"n": 1})
    outbox_sql = [q["sql"].split()[0].upper() for q in queries.captured_queries
                  if "taskstream_outbox" in q["sql"]]
    assert outbox_sql == ["INSERT", "DELETE"]
    assert len(set(keys)) == 2
    assert logged("job:7010") == logged("user:7010") == [("thing.done", {"n": 1})]
    assert not OutboxEvent.objects.exists()


def test_a_rolled_back_change_publishes_nothing():
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_publish(topic="user:7002", event="thing.done", data={})
        raise RuntimeError("the change failed")
    with transaction.atomic():
        try:
            with transaction.atomic():
                outbox_publish(topic="user:7002", event="inner.undone", data={})
                raise RuntimeError("a savepoint rolls back")
        except RuntimeError:
            pass
        outbox_publish(topic="user:7002", event="outer.done", data={})
    assert [e for e, _ in logged("user:7002")] == ["outer.done"]
    assert not OutboxEvent.objects.exists()


def test_bad_events_fail_inside_the_transaction_and_outside_one():
    big = {"blob": "x" * (settings.TASKSTREAM.get("MAX_EVENT_BYTES", 65536) + 1)}
    with pytest.raises(EventTooLarge), transaction.atomic():
        outbox_publish(topic="user:7003", event="thing.done", data=big)
    with pytest.raises(HubUsageError):
        outbox_publish(topic="user:7003", event="thing.done", data={})
    assert not OutboxEvent.objects.exists()


def test_redis_down_keeps_the_event_and_the_relay_sends_it_once(own_redis, relay):
    own_redis.stop()
    with transaction.atomic():  # does not raise: the change is committed
        outbox_publish(topic="user:7004", event="thing.done", data={"n": 1})
    assert OutboxEvent.objects.count() == 1
    own_redis.start()
    wait_for(lambda: not OutboxEvent.objects.exists())
    assert logged("user:7004") == [("thing.done", {"n": 1})]


def test_an_older_unsent_event_goes_out_before_a_newer_one(own_redis):
    own_redis.stop()
    with transaction.atomic():
        outbox_publish(topic="user:7005", event="first", data={})
        outbox_publish(topic="user:7006", event="elsewhere", data={})
    own_redis.start()
    # No relay runs: the next commit on the topic sends the older event first.
    with transaction.atomic():
        outbox_publish(topic="user:7005", event="second", data={})
    assert [e for e, _ in logged("user:7005")] == ["first", "second"]
    assert logged("user:7006") == []  # another topic's backlog is the relay's
    assert list(OutboxEvent.objects.values_list("event", flat=True)) == ["elsewhere"]


def test_a_resend_after_a_crash_between_publish_and_delete_is_not_logged_twice(relay):
    with transaction.atomic():
        for n in range(5):
            outbox_publish(topic="user:7007", event="tick", data={"n": n})
        rows = [{f: getattr(row, f) for f in ("topic", "event", "data", "ts", "key")}
                for row in OutboxEvent.objects.order_by("id")]
    assert [d["n"] for _, d in logged("user:7007")] == list(range(5))
    # What a relay (or fast path) killed after Redis had the events, before it deleted
    # the rows, leaves behind: the same rows, unsent as far as the table knows.
    OutboxEvent.objects.bulk_create(OutboxEvent(**row) for row in rows)
    wait_for(lambda: not OutboxEvent.objects.exists())
    with transaction.atomic():
        outbox_publish(topic="user:7007", event="tick", data={"n": 5})
    assert [d["n"] for _, d in logged("user:7007")] == list(range(6))
