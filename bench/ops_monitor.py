"""``python -m bench.ops_monitor``: the events monitor's CPU at 1,000 task events/s.

In one process, without a broker: synthetic task events (received, started, succeeded or,
one in 20, failed, as a worker sends them, with heartbeats from 4 workers) go straight into
:meth:`Monitor.on_event`, 1,000 of them per simulated second, each second closed by one
:meth:`Monitor.tick` (what the monitor does once per ``OPS_PULSE_INTERVAL``: write the
second's events to the database in one batch, judge heartbeats and alerts, read the
overview back, publish ``monitor.summary``). The CPU of the whole process over ``--seconds``
simulated seconds, divided by them, is the monitor's share of a core at 1,000 events/s.

Database: a temporary SQLite file unless ``DATABASE_URL`` is set (SQLite runs inside this
process, so its CPU is counted; a PostgreSQL server's is not). Redis: an embedded one
unless ``REDIS_URL`` is set.

    python -m bench.ops_monitor [--seconds 60] [--rate 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORKERS = [f"celery@bench{i}" for i in range(4)]


def one_second(n: int, at: float, clock: list[int]) -> list[dict[str, Any]]:
    """``n`` events of one second (tasks of three events each), and each worker's heartbeat."""
    out: list[dict[str, Any]] = []
    task = 0
    while len(out) < n:
        tid, host = str(uuid.uuid4()), WORKERS[task % len(WORKERS)]
        end = (("task-failed", {"exception": "ValueError('bench')"}) if task % 20 == 0
               else ("task-succeeded", {"runtime": 0.01}))
        for kind, extra in (("task-received", {"name": "demo.noop", "args": "()",
                                               "kwargs": "{}"}), ("task-started", {}), end):
            clock[0] += 1
            out.append({"type": kind, "uuid": tid, "hostname": host, "timestamp": at,
                        "local_received": at, "clock": clock[0], **extra})
        task += 1
    out = out[:n]
    for host in WORKERS:
        clock[0] += 1
        out.append({"type": "worker-heartbeat", "hostname": host, "timestamp": at,
                    "local_received": at, "clock": clock[0], "freq": 2.0, "active": 1,
                    "processed": clock[0], "sw_ident": "py-celery", "sw_ver": "5.7"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ops_monitor")
    parser.add_argument("--seconds", type=int, default=60, help="simulated seconds of load")
    parser.add_argument("--rate", type=int, default=1000, help="task events per second")
    args = parser.parse_args()

    from taskstream.devredis import RedisProcess

    redis = None
    if not os.environ.get("REDIS_URL"):
        redis = RedisProcess().start()
        os.environ["REDIS_URL"] = redis.url
    tmp = tempfile.TemporaryDirectory(prefix="bench-ops-monitor-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp.name}/bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
    # Ticks are driven by the bench (one per simulated second), not by the clock.
    os.environ["TASKSTREAM_JSON"] = json.dumps({"OPS_PULSE_INTERVAL": 1e9})
    try:
        import django

        django.setup()
        from celery import current_app
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from taskstream.ops.models import TaskEvent
        from taskstream.ops.monitor import Monitor

        monitor = Monitor(current_app)
        monitor._asked.update(WORKERS)  # no broker to ask for pool sizes
        clock = [0]
        # Generated before timing: the broker's decoding is not the monitor's work.
        start = time.time()
        seconds = [one_second(args.rate, start + s, clock) for s in range(args.seconds)]
        monitor.tick()  # warm: the database and Redis connections, the first summary
        cpu0, wall0 = time.process_time(), time.perf_counter()
        handler_cpu = tick_cpu = 0.0
        ticks = []
        for events in seconds:
            t0 = time.process_time()
            for event in events:
                monitor.on_event(event)
            t1 = time.process_time()
            summary = monitor.tick()
            t2 = time.process_time()
            assert summary is not None, "a tick failed"
            handler_cpu += t1 - t0
            tick_cpu += t2 - t1
            ticks.append(t2 - t1)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        stored = TaskEvent.objects.count()
        db = django.db.connection.vendor
    finally:
        if redis is not None:
            redis.close()
        tmp.cleanup()
    n = args.rate * args.seconds
    ticks.sort()
    result = {
        "database": db, "rate_events_per_s": args.rate, "simulated_seconds": args.seconds,
        "task_events": n, "task_events_stored": stored,
        "cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
        "core_share_pct": round(cpu / args.seconds * 100, 1),
        "cpu_us_per_event_handler": round(handler_cpu / n * 1e6, 1),
        "cpu_ms_per_tick_p50": round(ticks[len(ticks) // 2] * 1e3, 1),
        "cpu_ms_per_tick_max": round(ticks[-1] * 1e3, 1),
        "cpu_us_per_event_all_in": round(cpu / n * 1e6, 1),
        "summaries_published": monitor.summaries,
        "last_summary_tasks": summary["tasks"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"ops-monitor-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
