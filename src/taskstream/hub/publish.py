"""Publish events to topics: sync ``publish`` and async ``apublish``; both return the cursor."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from taskstream.conf import conf
from taskstream.exceptions import EventTooLarge, HubUsageError, InvalidTopic
from taskstream.hub import keys, log
from taskstream.hub.protocol import EVENT_RE, MAX_EVENT_LEN, MAX_TOPIC_LEN, TOPIC_RE, event_frame
from taskstream.hub.redis import async_client, live_publish, script, sync_client


def encode_event(topic: str, event: str,
                 data: Mapping[str, Any] | None) -> tuple[str, str, str, str]:
    """Validate an event and encode it once: ``(topic_json, event_json, data_json, ts)``.

    Raises ``InvalidTopic``, ``HubUsageError`` or ``EventTooLarge``.
    """
    if not (len(topic) <= MAX_TOPIC_LEN and TOPIC_RE.match(topic)):
        raise InvalidTopic(f"invalid topic {topic!r}")
    if not (len(event) <= MAX_EVENT_LEN and EVENT_RE.match(event)):
        raise InvalidTopic(f"invalid event name {event!r}")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise HubUsageError(f"event data must be a mapping, got {type(data).__name__}")
    data_json = json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)
    if len(data_json.encode()) > conf.MAX_EVENT_BYTES:
        raise EventTooLarge(f"event data is {len(data_json)} bytes; the limit is "
                            f"MAX_EVENT_BYTES={conf.MAX_EVENT_BYTES}")
    ts = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps(topic), json.dumps(event), data_json, ts


_encode = encode_event


def _ephemeral_message(topic_json: str, event_json: str, data_json: str, ts: str) -> str:
    return f"{log.EPHEMERAL_MARK} {event_frame(topic_json, None, event_json, data_json, ts)}"


def publish(topic: str, event: str, data: Mapping[str, Any] | None = None, *,
            ephemeral: bool = False) -> str | None:
    """Append an event to the topic's log and deliver it live; returns its cursor.

    For sync code: views, Celery tasks, management commands. Ephemeral events (typing)
    skip the log, are delivered at most once and return ``None``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise HubUsageError("publish() blocks; in async code use `await apublish(...)`")
    topic_json, event_json, data_json, ts = _encode(topic, event, data)
    client = sync_client()
    if ephemeral:
        message = _ephemeral_message(topic_json, event_json, data_json, ts)
        live_publish(client, keys.channel(topic), message)
        return None
    script_keys, args = log.publish_args(topic_json, event_json, data_json, ts, topic)
    epoch, sid = script(client, log.PUBLISH_LUA)(keys=script_keys, args=args)
    return f"{_text(epoch)}-{_text(sid)}"


def apublish(topic: str, event: str, data: Mapping[str, Any] | None = None, *,
             ephemeral: bool = False, key: str = "") -> Awaitable[str | None]:
    """Async twin of :func:`publish`, for consumers and async views: ``await apublish(...)``.

    With ``key`` (an outbox event's) the event is logged at most once per topic: a key
    the topic already logged answers its first cursor and publishes nothing.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise HubUsageError(
            "apublish() needs a running event loop; in sync code call publish(...)"
        ) from None
    encoded = _encode(topic, event, data)
    return _apublish(topic, encoded, ephemeral, key)


async def _apublish(topic: str, encoded: tuple[str, str, str, str], ephemeral: bool,
                    key: str = "") -> str | None:
    topic_json, event_json, data_json, ts = encoded
    client = async_client()
    if ephemeral:
        await live_publish(client, keys.channel(topic),
                           _ephemeral_message(topic_json, event_json, data_json, ts))
        return None
    script_keys, args = log.publish_args(topic_json, event_json, data_json, ts, topic, key)
    epoch, sid = await script(client, log.PUBLISH_LUA)(keys=script_keys, args=args)
    return f"{_text(epoch)}-{_text(sid)}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
