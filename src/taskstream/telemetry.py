"""Counters the hub bumps on its paths; the ops app exports them at ``/metrics``.

Core, so the hub can count without knowing the ops app. Only counters and gauges without
per-topic or per-socket labels: one ``inc()`` is about a microsecond, and a delivery is
counted once per Redis message (``inc(n)`` for its n local subscribers), not per socket.

Across processes: with ``PROMETHEUS_MULTIPROC_DIR`` in the environment *before* the
process starts, prometheus-client keeps each process's values in files there and
``/metrics`` sums them (see docs/ops.md); without it they live in the process's memory.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

HUB_CONNECTIONS = Gauge("taskstream_hub_connections", "Open WebSocket connections",
                        multiprocess_mode="livesum")
HUB_SUBSCRIPTIONS = Gauge("taskstream_hub_subscriptions", "Live topic subscriptions",
                          multiprocess_mode="livesum")
EVENTS_PUBLISHED = Counter("taskstream_events_published",
                           "Events handed to Redis (log and fan-out) by publishers")
EVENTS_DELIVERED = Counter("taskstream_events_delivered",
                           "Live events written to local subscribers")
REPLAYS = Counter("taskstream_replays", "Subscribes with `since` that replayed the log")
GAPS = Counter("taskstream_gaps", "`gap` frames sent (since older than the retained log)")
SLOW_CONSUMERS = Counter("taskstream_slow_consumers_closed",
                         "Sockets closed 4408 because their outbound queue overflowed")
