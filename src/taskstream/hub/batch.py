"""Publish several events in one Redis round trip (sync code only).

A job event goes to ``job:<id>`` and ``user:<owner>``; pipelining the publish scripts
halves the round trips of every job state change. Each topic still gets its own log
entry and cursor, exactly as separate :func:`~taskstream.hub.publish` calls would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

from redis import Redis
from redis.exceptions import NoScriptError

from taskstream.exceptions import HubUsageError
from taskstream.hub import log
from taskstream.hub.publish import _encode, _text
from taskstream.hub.redis import sync_client

_SHA_ATTR = "_taskstream_publish_sha"

# KEYS and ARGV of one run of the publish script.
PublishCall = tuple[list[str], list[Any]]


def publish_call(topic: str, event: str, data: Mapping[str, Any] | None) -> PublishCall:
    """Validate and encode one event for :func:`publish_calls` (raises ``EventTooLarge``)."""
    topic_json, event_json, data_json, ts = _encode(topic, event, data)
    return log.publish_args(topic_json, event_json, data_json, ts, topic)


def publish_calls(calls: Sequence[PublishCall], *, client: Redis | None = None) -> list[str]:
    """Run the encoded events in order, in one pipeline; returns their cursors."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise HubUsageError("batched publishing blocks; call it from sync code")
    if client is None:
        client = sync_client()
    replies: list[Any] = [None] * len(calls)
    todo = list(range(len(calls)))
    for attempt in range(2):
        sha = client.__dict__.get(_SHA_ATTR)
        if sha is None or attempt:
            sha = client.__dict__[_SHA_ATTR] = client.script_load(log.PUBLISH_LUA)
        pipe = client.pipeline(transaction=False)
        for i in todo:
            script_keys, args = calls[i]
            # execute_command: redis-py's cluster pipeline routes EVALSHA by its keys' slot
            # but blocks the evalsha() helper.
            pipe.execute_command("EVALSHA", sha, len(script_keys), *script_keys, *args)
        missing = []
        for i, reply in zip(todo, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, NoScriptError) and not attempt:
                # Redis restarted or flushed its scripts (on a Cluster: the node that now
                # owns a slot never loaded it): load it again, once, and rerun exactly the
                # calls that did not run. A node refuses all of its calls alike, so each
                # topic's events still run in order.
                missing.append(i)
            elif isinstance(reply, Exception):
                raise reply
            else:
                replies[i] = reply
        if not missing:
            return [f"{_text(epoch)}-{_text(sid)}" for epoch, sid in replies]
        todo = missing
    raise AssertionError("unreachable")


def publish_many(topics: Sequence[str], event: str,
                 data: Mapping[str, Any] | None = None) -> list[str]:
    """Append ``event`` to each topic's log and deliver it live; returns their cursors."""
    return publish_calls([publish_call(topic, event, data) for topic in topics])
