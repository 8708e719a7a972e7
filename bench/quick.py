"""``make bench-quick``: issue 16's table in one small run, each row beside its floor.

Every row that can be measured small, taskstream and its reference in the same run: the
publish → client hop and fan-out CPU per delivery against a plain ``PUBLISH`` → bare ASGI
app (bench/floor.py), idle memory per socket (and, with ``--connect``, a connect storm)
against the bare app, enqueue → first event at the client against the naive Celery +
Channels pattern, LiveTask jobs/s against plain Celery no-op tasks. It reuses the
scenarios of ``bench.hub`` and ``bench.jobs`` with small counts; the numbers are noisy (a
few hundred samples on a shared machine) and only show a trend: the full benches are the
reference.

Writes ``bench/results/quick-<ts>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench import scenarios as sc
from bench.harness import ROOT, Env, raise_fd_limit
from bench.hub import machine

RESULTS = ROOT / "bench" / "results"
LOG_DIR = ROOT / "var" / "bench"

SIZES: dict[str, dict[str, Any]] = {
    "latency": {"events": 60, "warmup": 10, "interval": 0.005},
    "fanout": {"sockets": 100, "events": 20},
    "idle": {"sockets": 100, "hold": 0.5},
    "connect": {"sockets": 100},
    "jobs_latency": {"updates": 10, "gap": 0.01, "e2e": 15},
    "jobs_throughput": {"jobs": 40, "plain": 80, "naive": 10},
}


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    cfg = sc.Config(server_cpu=args.server_cpu, log_dir=LOG_DIR, results_dir=LOG_DIR)
    env = Env.create(client_cpu=args.client_cpu, n_users=6)
    out: dict[str, Any] = {}
    try:
        # The hub's scenarios, each on a fresh server: the hub, then the bare ASGI floor.
        users = iter(env.users[1:])
        scenarios = [("latency", sc.latency), ("fanout", sc.fanout), ("idle", sc.idle)]
        if args.connect:  # ~30 s more: two servers, a session per socket, two rounds
            scenarios.append(("connect", sc.connect_storm))
        for name, run in scenarios:
            user = next(users)
            out[name] = {}
            for target in ("hub", "floor"):
                began = time.monotonic()
                print(f"{name:>10} {target:<6} ...", end=" ", flush=True)
                res = await run(target, env, cfg, user, **SIZES[name])
                res.pop("hop_ms_samples", None)
                res.pop("to_redis_subscriber_samples", None)
                out[name][target] = res
                print(f"{time.monotonic() - began:.1f} s", flush=True)
        # bench.jobs' scenarios: this process starts jobs like a web process would.
        os.environ.update({**env.hub_env, "CELERY_TASK_DEFAULT_QUEUE": "benchjobs"})
        import django

        django.setup()
        import bench.jobs_tasks  # (registers the bench LiveTasks here too)
        from bench.jobs import Bench

        # One "queued" line per job started here would bury the table in the CI log (a
        # level set on the logger did not hold: the jobs' code configures logging again).
        logging.disable(logging.INFO)
        bench = Bench(env, args.server_cpu)
        for name, method in (
            ("jobs_latency", bench.latency),
            ("jobs_throughput", bench.throughput),
        ):
            began = time.monotonic()
            print(f"{name:>17} ...", end=" ", flush=True)
            out[name] = await method(**SIZES[name])
            print(f"{time.monotonic() - began:.1f} s", flush=True)
    finally:
        env.close()
    return out


def _ratio(ours: Any, ref: Any) -> float | None:
    return round(ours / ref, 2) if isinstance(ours, int | float) and ref else None


def _get(value: Any, *path: str) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def table(s: dict[str, Any]) -> list[dict[str, Any]]:
    """path | taskstream | reference (same run) | ratio | goal (issue 16)."""
    rows: list[dict[str, Any]] = []

    def row(path: str, ours: Any, ref: Any, unit: str, goal: str, ref_name: str) -> None:
        rows.append(
            {
                "path": path,
                "taskstream": ours,
                "reference": ref,
                "unit": unit,
                "reference_is": ref_name,
                "ratio": _ratio(ours, ref),
                "goal": goal,
            }
        )

    for pct in ("50", "99"):
        row(
            f"publish → client hop p{pct}",
            _get(s, "latency", "hub", "hop_ms", pct),
            _get(s, "latency", "floor", "hop_ms", pct),
            "ms",
            "≤ 1.5× floor (or ≤ 1 / 3 ms)",
            "floor",
        )
    row(
        "fan-out server CPU per delivery",
        _get(s, "fanout", "hub", "server_cpu_us_per_delivery"),
        _get(s, "fanout", "floor", "server_cpu_us_per_delivery"),
        "µs",
        "≤ 1.15× floor",
        "floor",
    )
    for pct in ("50", "99"):
        row(
            f"enqueue → first event p{pct}",
            _get(s, "jobs_latency", "taskstream", "enqueue_to_client_ms", pct),
            _get(s, "jobs_latency", "naive", "enqueue_to_client_ms", pct),
            "ms",
            "≤ 1/3 naive",
            "naive",
        )
    row(
        "LiveTask jobs/s (drain, 2 processes)",
        _get(s, "jobs_throughput", "livetask", "jobs_per_s"),
        _get(s, "jobs_throughput", "plain_celery_noop", "tasks_per_s"),
        "/s",
        "≥ 0.95× plain Celery",
        "plain Celery",
    )
    row(
        "idle memory per socket",
        _get(s, "idle", "hub", "bytes_per_socket"),
        _get(s, "idle", "floor", "bytes_per_socket"),
        "B",
        "≤ 1.1× bare app",
        "floor",
    )
    if "connect" in s:
        row(
            "connect storm, a session each",
            _get(s, "connect", "hub", "connect_s"),
            _get(s, "connect", "floor", "connect_s"),
            "s",
            "≤ 1.5× bare app",
            "floor",
        )
    return rows


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        value = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value} {unit}"


def print_table(rows: list[dict[str, Any]]) -> None:
    head = ("path", "taskstream", "floor or naive", "ratio", "goal")
    cells = [
        [
            r["path"],
            _fmt(r["taskstream"], r["unit"]),
            f"{_fmt(r['reference'], r['unit'])} ({r['reference_is']})",
            "-" if r["ratio"] is None else f"{r['ratio']}×",
            r["goal"],
        ]
        for r in rows
    ]
    sizes = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    print(" | ".join(h.ljust(w) for h, w in zip(head, sizes, strict=True)))
    print("-|-".join("-" * w for w in sizes))
    for c in cells:
        print(" | ".join(v.ljust(w) for v, w in zip(c, sizes, strict=True)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.quick",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--connect",
        action="store_true",
        help="also the connect storm against the bare app (~30 s more)",
    )
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args(argv)
    fds = raise_fd_limit()
    os.sched_setaffinity(0, {args.client_cpu})  # children (Redis, publishers) inherit it
    started = datetime.now(UTC)
    ts = started.strftime("%Y%m%dT%H%M%SZ")
    result: dict[str, Any] = {
        "bench": "quick",
        "ts": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "argv": sys.argv[1:],
        "sizes": SIZES,
        "machine": {
            **machine(),
            "fd_limit": fds,
            "server_cpu": args.server_cpu,
            "client_cpu": args.client_cpu,
            "load_avg_at_start": os.getloadavg(),
        },
    }
    began = time.monotonic()
    result["scenarios"] = asyncio.run(run_all(args))
    result["wall_s"] = round(time.monotonic() - began, 1)
    result["machine"]["load_avg_at_end"] = os.getloadavg()
    result["table"] = table(result["scenarios"])
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = f"quick-{ts}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print()
    print_table(result["table"])
    print(
        f"\n{result['wall_s']} s (noisy: the full benches are the reference); "
        f"wrote bench/results/{name}"
    )


if __name__ == "__main__":
    main()
