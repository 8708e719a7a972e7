"""Jobs' own tests claim and run jobs themselves, in this process.

Their tasks go to a queue no worker reads: the suite's shared worker (started by
integration tests, alive for the whole session) would otherwise take a job's message and
claim it before the test does. The queue is deleted at the end of the session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tests.conftest import CELERY_QUEUE

IDLE_QUEUE = f"{CELERY_QUEUE}-idle"


@pytest.fixture(scope="session")
def idle_queue(celery_queue: str) -> Iterator[str]:
    yield IDLE_QUEUE
    from example.celery import app

    with contextlib.suppress(Exception), app.connection_for_write() as conn:
        conn.default_channel.queue_delete(IDLE_QUEUE)
