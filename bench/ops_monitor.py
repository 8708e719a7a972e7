"""``python -m bench.ops_monitor``: the events monitor's CPU per Celery event, and per summary.

In one process, without a broker: synthetic task events (received, started, succeeded, as
a worker sends them, with heartbeats) go straight into :meth:`Monitor.on_event`, with its
summaries held back; then :meth:`Monitor.summary` is timed with the state full (10,000
tasks). At 1,000 events/s the monitor needs 1,000 times the per-event CPU of a core, plus one
summary per ``OPS_PULSE_INTERVAL``. An embedded Redis carries the summaries' publish.

    python -m bench.ops_monitor [--events 60000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def events(n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    clock = 0
    now = time.time()
    while len(out) < n:
        task = str(uuid.uuid4())
        for kind, extra in (("task-received", {"name": "demo.noop", "args": "()",
                                               "kwargs": "{}"}),
                            ("task-started", {}), ("task-succeeded", {"runtime": 0.01})):
            clock += 1
            out.append({"type": kind, "uuid": task, "hostname": "celery@bench",
                        "timestamp": now, "local_received": now, "clock": clock, **extra})
        if len(out) % 300 == 0:
            clock += 1
            out.append({"type": "worker-heartbeat", "hostname": "celery@bench",
                        "timestamp": now, "local_received": now, "clock": clock,
                        "freq": 2.0, "active": 1, "processed": len(out) // 3})
    return out[:n]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ops_monitor")
    parser.add_argument("--events", type=int, default=60_000)
    args = parser.parse_args()

    from taskstream.devredis import RedisProcess

    redis = RedisProcess().start()
    os.environ["REDIS_URL"] = redis.url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
    os.environ["TASKSTREAM_JSON"] = json.dumps({"OPS_PULSE_INTERVAL": 1e9})
    try:
        import django

        django.setup()
        from celery import current_app

        from taskstream.ops.monitor import Monitor

        monitor = Monitor(current_app)
        stream = events(args.events)
        monitor.maybe_publish(force=True)  # the first summary (connections warm)
        cpu = time.process_time()
        for event in stream:
            monitor.on_event(event)
        per_event_us = (time.process_time() - cpu) / len(stream) * 1e6
        cpu = time.process_time()
        rounds = 20
        for _ in range(rounds):
            monitor.maybe_publish(force=True)
        per_summary_ms = (time.process_time() - cpu) / rounds * 1e3
    finally:
        redis.close()
    result = {"events": len(stream), "tasks_in_state": len(monitor.state.tasks),
              "cpu_us_per_event": round(per_event_us, 1),
              "cpu_ms_per_summary_published": round(per_summary_ms, 2),
              "core_share_at_1000_events_per_s_pct": round(per_event_us * 1000 / 1e4, 1)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"ops-monitor-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
