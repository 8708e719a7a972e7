"""The ops app's metrics: job counters fed by the jobs app's ``job_moved`` signal, and the
gauges read from the database at scrape time.

The hub's own counters live in :mod:`taskstream.telemetry` (core). Labels are bounded:
a job kind is a registered Celery task name, a state one of six.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

JOB_TRANSITIONS = Counter("taskstream_job_transitions", "Job state changes, by kind and the "
                          "state entered", ["kind", "state"])
JOB_RETRIES = Counter("taskstream_job_retries", "Jobs that went to retrying or were queued "
                      "again (automatic retries, lost workers, retry by hand)", ["kind"])
JOB_DURATION = Histogram("taskstream_job_duration_seconds", "From a job's first start to its "
                         "end (succeeded, failed or cancelled while running)", ["kind"],
                         buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600))

_TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def job_moved(sender: Any, *, job: Any, state: str, created: bool = False,
              **kwargs: Any) -> None:
    """The receiver of ``taskstream.jobs.signals.job_moved``: a few counter bumps."""
    fields = job.__dict__  # as the move left them; never a deferred query from here
    kind = fields.get("kind") or "?"
    JOB_TRANSITIONS.labels(kind, state).inc()
    if state == "retrying" or (state == "queued" and not created):
        JOB_RETRIES.labels(kind).inc()
    if state in _TERMINAL:
        started, finished = fields.get("started_at"), fields.get("finished_at")
        if isinstance(started, datetime) and isinstance(finished, datetime):
            JOB_DURATION.labels(kind).observe(max(0.0, (finished - started).total_seconds()))


class DatabaseCollector(Collector):
    """Read at scrape time: jobs by kind and state, broker queue depths, the outbox's
    backlog."""

    def collect(self) -> Iterator[Metric]:
        from django.apps import apps
        from django.db.models import Count, Min
        from django.utils import timezone

        from taskstream.models import OutboxEvent

        if apps.is_installed("taskstream.jobs"):
            from taskstream.jobs.models import Job

            jobs = GaugeMetricFamily("taskstream_jobs", "Jobs in the database by kind and state",
                                     labels=["kind", "state"])
            for kind, state, count in (Job.objects.order_by().values_list("kind", "state")
                                       .annotate(n=Count("pk"))):
                jobs.add_metric([kind, state], count)
            yield jobs
        from taskstream.ops.queues import queue_depths

        depths = queue_depths()
        if depths is not None:
            queue = GaugeMetricFamily("taskstream_queue_depth", "Messages waiting in a broker "
                                      "queue (read from the broker at scrape time)",
                                      labels=["queue"])
            for name, depth in depths.items():
                queue.add_metric([name], depth)
            yield queue
        found = OutboxEvent.objects.order_by().aggregate(n=Count("pk"),
                                                         oldest=Min("created_at"))
        yield GaugeMetricFamily("taskstream_outbox_backlog",
                                "State events written but not yet published", value=found["n"])
        oldest = found["oldest"]
        age = (timezone.now() - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily("taskstream_outbox_oldest_seconds",
                                "Age of the oldest unpublished state event", value=age)


def registry() -> CollectorRegistry:
    """What ``/metrics`` exposes: every process's values when ``PROMETHEUS_MULTIPROC_DIR`` is
    set (read from its files at each scrape), this process's otherwise; plus the database's."""
    collected = CollectorRegistry(auto_describe=False)
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        MultiProcessCollector(collected, path=path)
    else:
        collected.register(REGISTRY)
    collected.register(DatabaseCollector())
    return collected
