"""A task's own ``self.retry(kwargs=...)`` on a real worker: the retry still runs as its job."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from taskstream.jobs import job_start
from taskstream.jobs.models import Job

pytestmark = pytest.mark.django_db(transaction=True)

QUEUE = f"tsretry{secrets.token_hex(3)}"


@pytest.fixture(scope="module")
def worker(start_worker: Callable[..., Any]) -> Iterator[Any]:
    worker = start_worker(concurrency=1, DJANGO_SETTINGS_MODULE="tests.jobs.worker_settings",
                          CELERY_TASK_DEFAULT_QUEUE=QUEUE)
    yield worker
    worker.stop()


def test_a_retry_with_new_keywords_runs_as_its_job(worker: Any, make_user: Any) -> None:
    import tests.jobs.worker_kinds  # noqa: F401  (this process must know the kind too)

    job = job_start(kind="tests.jobs.retry_new_kwargs", owner=make_user(), queue=QUEUE,
                    params={"value": 1})
    deadline = time.monotonic() + 60
    while (job := Job.objects.get(pk=job.pk)).state not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"job still {job.state}"
        time.sleep(0.05)
    assert (job.state, job.attempt, job.result) == ("succeeded", 2, 2)
