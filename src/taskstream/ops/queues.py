"""Broker queue depth: messages waiting in each queue, asked of the broker itself.

One code path for RabbitMQ and Redis: kombu's passive ``queue_declare`` answers the
message count on both (AMQP's declare-ok; the Redis transport's list lengths, summed over
its priority lists). A queue the broker does not know holds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger("taskstream.ops")


def known_queues() -> list[str]:
    """Celery's configured queues, and the queues of jobs waiting now (``job_start(queue=)``)."""
    from celery import current_app
    from django.apps import apps

    names = set(current_app.amqp.queues.keys()) | {current_app.conf.task_default_queue}
    if apps.is_installed("taskstream.jobs"):
        from taskstream.jobs.models import Job

        names |= set(Job.objects.filter(state__in=("queued", "retrying")).exclude(queue="")
                     .order_by().values_list("queue", flat=True).distinct()[:100])
    return sorted(n for n in names if n)


def queue_depths(names: Iterable[str] | None = None, *,
                 timeout: int = 2) -> dict[str, int] | None:
    """Messages waiting per queue (not counting those a worker holds unacked); None when the
    broker cannot be reached."""
    from celery import current_app

    names = list(known_queues() if names is None else names)
    depths: dict[str, int] = {}
    try:
        with current_app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
            channel: Any = connection.channel()
            try:
                for name in names:
                    try:
                        depths[name] = int(channel.queue_declare(queue=name, passive=True)
                                           .message_count)
                    except connection.channel_errors:
                        # AMQP: 404 NOT_FOUND closes the channel; nothing waits there.
                        depths[name] = 0
                        channel = connection.channel()
            finally:
                try:
                    channel.close()
                except Exception:
                    pass
    except Exception as exc:
        logger.warning("could not read queue depths from the broker: %s", exc)
        return None
    return depths
