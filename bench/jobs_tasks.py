"""Tasks of the jobs bench.

``bench.jobs_tasks`` holds the LiveTasks (run by ``celery -A bench.jobs_tasks`` with the
demo's settings); ``bench.jobs_naive`` holds the naive twins on a plain Celery app.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import shared_task

from example.celery import app
from taskstream.jobs import LiveTask

__all__ = ["app"]

# `bench.jobs --trace`: the worker's side of one trace per job, as wall-clock ns in a Redis
# hash per task id (the bench adds its own side and the client's). Off by default.
TRACE_KEY = "tsbench:trace:"
if os.environ.get("TASKSTREAM_BENCH_TRACE"):
    from celery.signals import task_postrun, task_prerun, task_received
    from django.db import connection
    from django.dispatch import receiver

    from taskstream.jobs.signals import job_moved

    _steps: dict[str, int] = {}

    def _redis() -> Any:
        from taskstream.hub.redis import sync_client

        return sync_client()

    @task_received.connect(weak=False)
    def _received(sender: Any = None, request: Any = None, **kwargs: Any) -> None:
        # The worker's main process took the message off the broker.
        _redis().hset(TRACE_KEY + str(request.id), "worker_received", time.time_ns())

    def _sql(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        result = execute(sql, params, many, context)
        if "taskstream_outbox" in sql and sql.lstrip().upper().startswith("INSERT"):
            _steps.setdefault("claim_written", time.time_ns())  # UPDATE + INSERT, pre-commit
        return result

    _wrapper: list[Any] = []

    @task_prerun.connect(weak=False)
    def _prerun(task_id: str = "", **kwargs: Any) -> None:
        _steps.clear()
        _steps["task_start"] = time.time_ns()  # the pool process began the task
        wrapper = connection.execute_wrapper(_sql)
        wrapper.__enter__()
        _wrapper.append(wrapper)

    @receiver(job_moved, weak=False)
    def _moved(sender: Any = None, state: str = "", **kwargs: Any) -> None:
        if state == "running":  # after the commit and the fast path's publish
            _steps.setdefault("first_event_published", time.time_ns())

    @task_postrun.connect(weak=False)
    def _postrun(task_id: str = "", **kwargs: Any) -> None:
        while _wrapper:
            _wrapper.pop().__exit__(None, None, None)
        if _steps:
            _redis().hset(TRACE_KEY + task_id, mapping=dict(_steps))


@shared_task(base=LiveTask, bind=True, name="bench.probe")
def probe(self: LiveTask, *, updates: int = 1, gap: float = 0.0) -> None:
    """Progress updates whose message is the wall clock (ns) at the call: task → client."""
    if os.environ.get("TASKSTREAM_BENCH_TRACE"):
        _steps.setdefault("body_start", time.time_ns())
    for i in range(1, updates + 1):
        self.progress(i, updates, str(time.time_ns()))
        if gap:
            time.sleep(gap)


@shared_task(base=LiveTask, bind=True, name="bench.noop")
def noop(self: LiveTask, *, updates: int = 10) -> None:
    """The unit of the throughput bench: start, ``updates`` progress calls, finish."""
    for i in range(1, updates + 1):
        self.progress(i, updates)


def _plain(current: int, total: int) -> None:
    """The baseline of a progress call: a Python call of the same shape that does nothing."""


@shared_task(base=LiveTask, bind=True, name="bench.progress_cost")
def progress_cost(self: LiveTask, *, calls: int = 1000, blocks: int = 400) -> dict[str, Any]:
    """What ``progress()`` costs the task: per call, and the flushes in the background.

    Blocks of ``calls`` progress calls alternate with blocks of plain calls; the median
    block difference is the per-call cost, immune to the odd preemption by other load.
    Flushes (UPDATE + one pipelined publish to two topics, at most once per
    ``JOB_PROGRESS_INTERVAL``) run in the ticker thread: the CPU the process spent
    outside this thread is what they took from the task (under the GIL, at most that).
    """
    with_progress, plain = [], []
    wall, cpu, own = time.perf_counter(), time.process_time(), time.thread_time()
    for _ in range(blocks):
        began = time.perf_counter()
        for i in range(calls):
            self.progress(i, calls)
        middle = time.perf_counter()
        for i in range(calls):
            _plain(i, calls)
        with_progress.append(middle - began)
        plain.append(time.perf_counter() - middle)
    wall = time.perf_counter() - wall
    others_cpu = (time.process_time() - cpu) - (time.thread_time() - own)
    with_progress.sort()
    plain.sort()
    return {"call_us": (with_progress[blocks // 2] - plain[blocks // 2]) / calls * 1e6,
            "background_share": others_cpu / wall, "wall_s": wall}


@shared_task(base=LiveTask, bind=True, name="bench.slow")
def slow(self: LiveTask, *, steps: int, step_seconds: float) -> dict[str, Any]:
    for step in range(1, steps + 1):
        self.checkpoint()
        time.sleep(step_seconds)
        self.progress(step, steps)
    return {"steps": steps}
