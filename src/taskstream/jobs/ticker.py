"""One background thread per worker process: heartbeats and delayed progress of its runs.

A task busy in a long step still heartbeats, and a progress value held back by the
rate limit goes out within ``JOB_PROGRESS_INTERVAL`` even if the task reports no more.
"""

from __future__ import annotations

import logging
import os
import threading

from django.db import close_old_connections

from taskstream.conf import conf
from taskstream.jobs.lifecycle import Run

logger = logging.getLogger("taskstream.jobs")


class Ticker:
    def __init__(self) -> None:
        self._runs: dict[int, Run] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pid: int | None = None

    def add(self, run: Run) -> None:
        with self._lock:
            if self._pid != os.getpid():  # first use in this (forked) process
                self._pid = os.getpid()
                self._runs = {}
                threading.Thread(target=self._loop, name="taskstream-jobs-ticker",
                                 daemon=True).start()
            self._runs[id(run)] = run
            self._wake.notify()

    def remove(self, run: Run) -> None:
        with self._lock:
            self._runs.pop(id(run), None)

    def _loop(self) -> None:
        while True:
            with self._lock:
                while not self._runs:
                    self._wake.wait()
                runs = list(self._runs.values())
            for run in runs:
                try:
                    run.tick()
                except Exception:
                    logger.exception("heartbeat of job %s failed", run.job.pk)
                    close_old_connections()
            with self._lock:
                self._wake.wait(min(conf.JOB_PROGRESS_INTERVAL, conf.JOB_HEARTBEAT_INTERVAL))


ticker = Ticker()
