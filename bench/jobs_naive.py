"""The naive pattern's tasks: a plain Celery app calling ``async_to_sync(group_send)``.

Run with ``DJANGO_SETTINGS_MODULE=bench.naive.settings`` (the Channels guides' layer) and
``NAIVE_BROKER_URL``; counts finished tasks in Redis (``NAIVE_REDIS_URL``) so the bench
can wait for a batch without a result backend.
"""

from __future__ import annotations

import os
import time

import django
import redis
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.naive.settings")
django.setup()

from asgiref.sync import async_to_sync  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402

app = Celery("naive", broker=os.environ.get("NAIVE_BROKER_URL", "redis://127.0.0.1:6379/1"))
app.conf.update(task_ignore_result=True, worker_prefetch_multiplier=1,
                task_default_queue=os.environ.get("NAIVE_QUEUE", "naive"))
DONE_KEY = "naivebench:done"


def _counter() -> redis.Redis:
    return redis.Redis.from_url(os.environ.get("NAIVE_REDIS_URL", "redis://127.0.0.1:6379/0"))


def _send(user: int, payload: dict[str, object]) -> None:
    async_to_sync(get_channel_layer().group_send)(  # type: ignore[union-attr]
        f"user_{user}", {"type": "notify", "payload": payload})


@app.task(name="naive.progress")
def progress(user: int, enqueued_ns: int) -> None:
    """One progress event, the way the guides publish from a task."""
    _send(user, {"event": "progress", "enqueued_ns": enqueued_ns, "task_ns": time.time_ns()})


@app.task(name="naive.noop")
def noop() -> None:
    _counter().incr(DONE_KEY)


@app.task(name="naive.process_report")
def process_report(user: int, updates: int = 10) -> None:
    """The guides' report task: a group_send per progress step and one at the end."""
    for i in range(1, updates + 1):
        _send(user, {"event": "progress", "current": i, "total": updates})
    _send(user, {"event": "done"})
    _counter().incr(DONE_KEY)
