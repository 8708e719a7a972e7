"""Tasks of the jobs bench.

``bench.jobs_tasks`` holds the LiveTasks (run by ``celery -A bench.jobs_tasks`` with the
demo's settings); ``bench.jobs_naive`` holds the naive twins on a plain Celery app.
"""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task

from example.celery import app
from taskstream.jobs import LiveTask

__all__ = ["app"]


@shared_task(base=LiveTask, bind=True, name="bench.probe")
def probe(self: LiveTask, *, updates: int = 1, gap: float = 0.0) -> None:
    """Progress updates whose message is the wall clock (ns) at the call: task → client."""
    for i in range(1, updates + 1):
        self.progress(i, updates, str(time.time_ns()))
        if gap:
            time.sleep(gap)


@shared_task(base=LiveTask, bind=True, name="bench.noop")
def noop(self: LiveTask, *, updates: int = 10) -> None:
    """The unit of the throughput bench: start, ``updates`` progress calls, finish."""
    for i in range(1, updates + 1):
        self.progress(i, updates)


def _spin(loops: int) -> None:
    for _ in range(loops):
        pass


@shared_task(base=LiveTask, bind=True, name="bench.progress_cost")
def progress_cost(self: LiveTask, *, loops: int, iterations: int,
                  report: bool) -> dict[str, Any]:
    """``iterations`` steps of ``loops`` empty loop turns, reporting progress each step or not.

    Measured in CPU time of the whole process (the ticker thread's work included), so
    other load on the machine does not count.
    """
    began = time.process_time()
    for i in range(1, iterations + 1):
        _spin(loops)
        if report:
            self.progress(i, iterations)
    return {"cpu_s": time.process_time() - began}


@shared_task(base=LiveTask, bind=True, name="bench.slow")
def slow(self: LiveTask, *, steps: int, step_seconds: float) -> dict[str, Any]:
    for step in range(1, steps + 1):
        self.checkpoint()
        time.sleep(step_seconds)
        self.progress(step, steps)
    return {"steps": steps}
