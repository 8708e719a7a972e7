"""``python -m bench.ops_metrics``: what ``/metrics`` costs on the task path, in one run.

No-op LiveTask jobs (row, start, 10 progress calls, finish, their events: the ops app's
``job_moved`` receiver bumps its counters at each state change, the hub its own at each
publish) drained by a fresh 2-process prefork worker, in alternating rounds:

* ``multiprocess``: ``PROMETHEUS_MULTIPROC_DIR`` set (a fresh directory per round), as
  ``make run`` and production do: every increment goes to the process's mmap file, so
  ``/metrics`` can sum the processes;
* ``in_process``: the variable unset: the same increments on in-memory values only.

Rounds alternate the order (A B, B A, …) so drift in the shared machine's load falls on
both. Each round: enqueue ``--jobs`` with no worker running, start the worker, time the
drain; CPU per job of the worker's processes and Redis (psutil). One scrape of
``/metrics``'s registry over the last multiprocess directory is timed too.

    python -m bench.ops_metrics [--jobs 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import Env
from bench.hub import machine
from bench.jobs import LOG_DIR, RESULTS, CpuMeter, Worker

VARIANTS = ("multiprocess", "in_process")


def drain(env: Env, owner: Any, jobs: int, variant: str, n: int,
          metrics_dir: Path | None) -> dict[str, Any]:
    from taskstream.jobs import job_start
    from taskstream.jobs.models import Job

    Job.objects.all().delete()
    for _ in range(jobs):
        job_start(kind="bench.noop", owner=owner, params={"updates": 10})
    worker_env = {**env.hub_env, "CELERY_TASK_DEFAULT_QUEUE": "benchjobs",
                  "TASKSTREAM_JSON": "{}"}
    worker_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if metrics_dir is not None:
        worker_env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    worker = Worker("bench.jobs_tasks", {**os.environ, **worker_env}, "benchjobs",
                    name=f"metrics-{variant}-{n}")
    worker.start()
    assert env.redis.proc is not None
    meter = CpuMeter(worker, env.redis.proc.pid)
    began = time.monotonic()
    try:
        while Job.objects.filter(state="succeeded").count() < jobs:
            time.sleep(0.02)
        seconds = time.monotonic() - began
        cpu = meter.per_unit_ms(jobs)
    finally:
        worker.stop()
    return {"variant": variant, "round": n, "jobs": jobs, "drain_s": round(seconds, 3),
            "jobs_per_s": round(jobs / seconds, 1), "cpu_ms_per_job": cpu,
            "metric_files": len(list(metrics_dir.glob("*.db"))) if metrics_dir else 0}


def scrape_ms(metrics_dir: Path) -> float:
    """One collection of every process's files, as ``/metrics`` does (without the HTTP)."""
    from prometheus_client import generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    MultiProcessCollector(registry, path=str(metrics_dir))
    began = time.perf_counter()
    body = generate_latest(registry)
    assert b"taskstream_job_transitions_total" in body
    return round((time.perf_counter() - began) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ops_metrics")
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    env = Env.create(client_cpu=1, n_users=1)
    os.environ.update({**env.hub_env, "CELERY_TASK_DEFAULT_QUEUE": "benchjobs"})
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # this process enqueues only
    tmp = tempfile.TemporaryDirectory(prefix="bench-ops-metrics-")
    runs: list[dict[str, Any]] = []
    scrape = None
    try:
        import django

        django.setup()
        from django.contrib.auth import get_user_model

        import bench.jobs_tasks  # noqa: F401  (registers bench.noop here too)

        owner = get_user_model().objects.get(pk=env.users[0])
        for n in range(args.rounds):
            for variant in (VARIANTS if n % 2 == 0 else VARIANTS[::-1]):
                metrics_dir = None
                if variant == "multiprocess":
                    metrics_dir = Path(tmp.name) / f"round{n}"
                    metrics_dir.mkdir()
                run = drain(env, owner, args.jobs, variant, n, metrics_dir)
                print(json.dumps(run), flush=True)
                runs.append(run)
                if metrics_dir is not None:
                    scrape = scrape_ms(metrics_dir)
    finally:
        env.close()
        tmp.cleanup()
    summary: dict[str, Any] = {}
    for variant in VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]
        summary[variant] = {
            "jobs_per_s_median": statistics.median(r["jobs_per_s"] for r in mine),
            "jobs_per_s_each": [r["jobs_per_s"] for r in mine],
            "cpu_ms_per_job_median": statistics.median(r["cpu_ms_per_job"]["total"]
                                                       for r in mine),
            "cpu_ms_per_job_each": [r["cpu_ms_per_job"]["total"] for r in mine]}
    result = {"bench": "ops_metrics", "ts": started.isoformat(timespec="seconds"),
              "jobs_per_round": args.jobs, "rounds": args.rounds,
              "machine": {**machine(), "load_avg_at_end": os.getloadavg()},
              "setup": "SQLite + one embedded Redis (hub log + broker); worker prefork -c 2",
              "summary": summary, "scrape_ms_one_collection": scrape, "runs": runs}
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"ops-metrics-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"wrote bench/results/{name}")


if __name__ == "__main__":
    main()
