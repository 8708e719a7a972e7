"""The queues page's broker reads and the purge: depth and oldest message age per queue.

Depth comes from kombu's passive ``queue_declare`` as in :mod:`taskstream.ops.queues`. The
age of the oldest waiting message comes from the ``taskstream_sent_at`` header that
:func:`stamp_sent` puts on every task message this project sends (Celery's own messages
carry no send time), read at the head of the queue without taking the message away:

* Redis: kombu ``LPUSH``-es and ``RPOP``-s, so the oldest message is ``LINDEX key -1`` of
  each priority list (the oldest of those heads counts);
* RabbitMQ: AMQP has no peek. ``basic_get`` then ``basic_reject(requeue=True)`` puts the
  message back at its place (RabbitMQ requeues to the original position), flagged
  ``redelivered``; Celery only looks at that flag with ``worker_deduplicate_successful_tasks``
  (off by default), and a job's claim only for a job already running, whose own message is
  never waiting in a queue unless its worker was lost (then the broker flags it anyway). So
  the head is read only when a page asks, never by ``/metrics``.

A message without the header (sent by a process without the ops app) has no age: ``None``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("taskstream.ops")

SENT_HEADER = "taskstream_sent_at"


def stamp_sent(sender: Any = None, headers: dict[str, Any] | None = None,
               **kwargs: Any) -> None:
    """``before_task_publish`` receiver: the send time (Unix seconds) as a message header.

    Always overwritten: a retry's message may carry its first message's headers along.
    """
    if headers is not None:
        headers[SENT_HEADER] = round(time.time(), 3)


@dataclass(frozen=True)
class QueueInfo:
    name: str
    depth: int  # messages waiting (not those a worker holds unacked)
    oldest_age: float | None  # seconds since the head message was sent; None: empty/unknown


def queue_infos(names: Iterable[str] | None = None, *, peek: bool = True,
                timeout: int = 2) -> list[QueueInfo] | None:
    """Depth and oldest age of each queue; None when the broker cannot be reached."""
    from celery import current_app

    from taskstream.ops.queues import known_queues

    names = list(known_queues() if names is None else names)
    found: list[QueueInfo] = []
    try:
        with current_app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
            driver = connection.transport.driver_type
            channel: Any = connection.channel()
            try:
                for name in names:
                    try:
                        depth = int(channel.queue_declare(queue=name, passive=True)
                                    .message_count)
                    except connection.channel_errors:
                        # AMQP: 404 NOT_FOUND closes the channel; nothing waits there.
                        found.append(QueueInfo(name, 0, None))
                        channel = connection.channel()
                        continue
                    sent = _head_sent_at(channel, driver, name) if depth and peek else None
                    age = max(0.0, time.time() - sent) if sent is not None else None
                    found.append(QueueInfo(name, depth, age))
            finally:
                _close(channel)
    except Exception as exc:
        logger.warning("could not read the queues from the broker: %s", exc)
        return None
    return found


def _head_sent_at(channel: Any, driver: str, name: str) -> float | None:
    try:
        if driver == "redis":
            return _redis_head(channel, name)
        if driver == "amqp":
            return _amqp_head(channel, name)
    except Exception as exc:  # the depth stands; the age is unknown this time
        logger.warning("could not read the head of queue %s: %s", name, exc)
    return None


def _redis_head(channel: Any, name: str) -> float | None:
    client = channel.client
    oldest: float | None = None
    for priority in channel.priority_steps:
        raw = client.lindex(channel._q_for_pri(name, priority), -1)
        if raw is None:
            continue
        sent = _sent_of(json.loads(raw).get("headers"))
        if sent is not None and (oldest is None or sent < oldest):
            oldest = sent
    return oldest


def _amqp_head(channel: Any, name: str) -> float | None:
    message = channel.basic_get(queue=name, no_ack=False)
    if message is None:
        return None  # a worker took it meanwhile
    try:
        return _sent_of(message.headers)
    finally:
        channel.basic_reject(message.delivery_tag, requeue=True)


def _sent_of(headers: Any) -> float | None:
    value = headers.get(SENT_HEADER) if isinstance(headers, dict) else None
    return float(value) if isinstance(value, int | float) else None


def queue_purge(name: str, *, timeout: int = 2) -> int:
    """Delete every message waiting in queue ``name``; how many there were.

    A queue the broker does not know holds nothing (0). Messages a worker holds unacked
    (running, or with a countdown) are not waiting and stay.
    """
    from celery import current_app

    with current_app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=timeout)
        channel: Any = connection.channel()
        try:
            return int(channel.queue_purge(queue=name) or 0)
        except connection.channel_errors:
            return 0
        finally:
            _close(channel)


def _close(channel: Any) -> None:
    try:
        channel.close()
    except Exception:
        pass
