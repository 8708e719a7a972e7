"""``make bench-jobs``: live jobs beside the naive Celery + Channels pattern, in one run.

Scenarios (embedded default: SQLite + one Redis as hub log and broker; 2 prefork workers):

* latency: a task's progress call → a browser-like WebSocket client, and enqueue → the
  first progress event at the client (the baseline's "e2e"), for both patterns; with
  ``--trace``, one trace per job of that path, step by step;
* http_starts: ``POST /api/jobs/`` in a row, one user: starts/s, latency, server CPU;
* throughput: no-op LiveTask jobs (row, start, 10 progress calls, finish, events) per
  second, vs plain Celery no-op tasks and the naive ``process_report`` task;
* progress cost: how often one job can call ``progress()`` before it slows by 5 %;
* recovery: SIGKILL of the worker running a job → the job running again → succeeded.

Results: ``bench/results/jobs-<ts>.json`` (and ``jobs-latest.json`` for a full run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import websockets

from bench.harness import Env, Server
from bench.hub import machine
from bench.stats import percentiles
from taskstream.testing import HubClient, stop_group

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOG_DIR = ROOT / "var" / "bench"

FULL = {"latency": {"updates": 500, "gap": 0.01, "e2e": 300},
        "http_starts": {"starts": 2000},
        "throughput": {"jobs": 1000, "plain": 2000, "naive": 1000},
        "progress_cost": {"repeat": 3},
        "recovery": {"steps": 40, "step_seconds": 0.1, "kill_at": 5}}
QUICK = {"latency": {"updates": 100, "gap": 0.01, "e2e": 50},
         "http_starts": {"starts": 300},
         "throughput": {"jobs": 200, "plain": 400, "naive": 200},
         "progress_cost": {"repeat": 1},
         "recovery": {"steps": 20, "step_seconds": 0.1, "kill_at": 3}}
# The recovery scenario's worker settings (production defaults: 10 s / 60 s / 30 s).
RECOVERY_SETTINGS = {"JOB_HEARTBEAT_INTERVAL": 1, "JOB_HEARTBEAT_TIMEOUT": 5,
                     "JOB_REAPER_INTERVAL": 2}


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


class CpuMeter:
    """CPU seconds spent by a worker's main process, its pool children and Redis.

    On a shared 2-core machine the drain rate moves with everyone else's load; CPU per
    job is what this code costs and moves much less.
    """

    def __init__(self, worker: Worker, redis_pid: int) -> None:
        assert worker.proc is not None
        self.main = psutil.Process(worker.proc.pid)
        self.children = self.main.children(recursive=True)
        self.redis = psutil.Process(redis_pid)
        self.start = self.read()

    def read(self) -> dict[str, float]:
        return {"worker_main": cpu_seconds(self.main),
                "worker_children": sum(cpu_seconds(c) for c in self.children),
                "redis": cpu_seconds(self.redis)}

    def per_unit_ms(self, count: int) -> dict[str, float]:
        now = self.read()
        out = {k: round((now[k] - self.start[k]) / count * 1000, 3) for k in now}
        out["total"] = round(sum(out.values()), 3)
        return out


class Worker:
    """A Celery worker subprocess in its own process group."""

    def __init__(self, app: str, env: dict[str, str], queue: str, *, concurrency: int = 2,
                 beat: bool = False, name: str = "w") -> None:
        self.log = LOG_DIR / f"worker-{name}.log"
        self.argv = [sys.executable, "-m", "celery", "-A", app, "worker", "-P", "prefork",
                     "-c", str(concurrency), "-Q", queue, "-n", f"{name}@%h",
                     "--without-gossip", "--without-mingle", "--without-heartbeat",
                     "--loglevel", "INFO"]
        if beat:
            self.argv += ["-B", "--scheduler", "celery.beat:Scheduler",
                          "-s", str(LOG_DIR / f"beat-{name}")]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Worker:
        self.log.write_bytes(b"")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while b" ready." not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start; see {self.log}")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, timeout=20)
        self.proc = None


# The steps of one enqueue → client trace, in order: (name, where it is taken).
TRACE_STEPS = [
    ("job_start", "bench: job_start() called"),
    ("committed", "bench: the job_start transaction committed (first on_commit callback)"),
    ("enqueue", "bench: Celery's before_task_publish (the on_commit enqueue begins)"),
    ("published", "bench: Celery's after_task_publish (the broker has the message)"),
    ("worker_received", "worker main process: task_received"),
    ("task_start", "pool process: task_prerun"),
    ("claim_written", "pool process: the claim's UPDATE and outbox INSERT done (pre-commit)"),
    ("first_event_published", "pool process: job.started committed, published and its rows "
                              "deleted (job_moved)"),
    ("client", "bench: job.started frame at the WebSocket client"),
]


class Tracer:
    """``--trace``: timestamps (wall clock, ns) of each step of one job's enqueue → client
    path; the worker's side comes from ``bench.jobs_tasks`` through Redis."""

    def __init__(self, redis_url: str) -> None:
        import redis as redis_lib
        from celery.signals import after_task_publish, before_task_publish

        self.redis = redis_lib.Redis.from_url(redis_url)
        self.local: dict[str, dict[str, int]] = {}
        self.traces: list[dict[str, int]] = []
        self.committed: int | None = None

        def before(sender: Any = None, headers: Any = None, **kwargs: Any) -> None:
            self.local.setdefault(str((headers or {}).get("id")), {})["enqueue"] = \
                time.time_ns()

        def after(sender: Any = None, headers: Any = None, **kwargs: Any) -> None:
            self.local.setdefault(str((headers or {}).get("id")), {})["published"] = \
                time.time_ns()

        before_task_publish.connect(before, weak=False)
        after_task_publish.connect(after, weak=False)

    def job_start(self, **kwargs: Any) -> Any:
        """``job_start`` in a transaction whose first commit callback notes the commit."""
        from django.db import transaction

        from taskstream.jobs import job_start

        def committed() -> None:
            self.committed = time.time_ns()

        with transaction.atomic():
            transaction.on_commit(committed)
            job = job_start(**kwargs)
        self.local.setdefault(job.celery_task_id, {})["committed"] = self.committed or 0
        return job

    def note(self, task_id: str, began: int, client: int) -> None:
        self.traces.append({"task_id": task_id, "job_start": began, "client": client,  # type: ignore[dict-item]
                            **self.local.pop(task_id, {})})

    def summary(self) -> dict[str, Any]:
        """Per step: the time since the step before (ms percentiles), and 5 raw traces."""
        from bench.jobs_tasks import TRACE_KEY

        rows = []
        for trace in self.traces:
            worker = self.redis.hgetall(TRACE_KEY + str(trace.pop("task_id")))
            row = {**trace, **{k.decode(): int(v) for k, v in worker.items()}}
            rows.append({name: row.get(name) for name, _ in TRACE_STEPS})
        steps: dict[str, Any] = {}
        for (prev, _), (name, _) in itertools.pairwise(TRACE_STEPS):
            gaps = [(r[name] - r[prev]) / 1e6 for r in rows if r[name] and r[prev]]
            steps[f"{prev} → {name}"] = percentiles(gaps)
        total = [(r["client"] - r["job_start"]) / 1e6 for r in rows]
        return {"steps_ms": steps, "total_ms": percentiles(total),
                "where": dict(TRACE_STEPS), "samples": len(rows),
                "raw_ns": [{k: (v - r["job_start"]) if v else None for k, v in r.items()}
                           for r in rows[:5]]}


class Bench:
    def __init__(self, env: Env, server_cpu: int, *, naive: bool = True,
                 trace: bool = False) -> None:
        self.env = env
        self.naive = naive  # False: the naive pattern's runs are left out (--no-naive)
        self.trace = trace  # True: one trace per enqueue → client job (--trace)
        self.server_cpu = server_cpu
        self.user = env.users[0]
        self.cookie = env.cookies[self.user]
        self.hub_env = {**env.hub_env, "CELERY_TASK_DEFAULT_QUEUE": "benchjobs",
                        "TASKSTREAM_JSON": "{}"}
        # One broker for both patterns (CELERY_BROKER_URL in the environment would win over
        # any other URL given to a Celery app in this process anyway).
        self.naive_env = {**env.naive_env, "NAIVE_BROKER_URL": env.redis.url,
                          "NAIVE_REDIS_URL": env.redis.url, "NAIVE_QUEUE": "benchnaive"}

    def hub_worker(self, name: str, queue: str = "benchjobs", concurrency: int = 2,
                   beat: bool = False, environ: dict[str, str] | None = None,
                   **settings: Any) -> Worker:
        env = {**self.hub_env, "TASKSTREAM_JSON": json.dumps(settings),
               "CELERY_TASK_DEFAULT_QUEUE": queue, **(environ or {})}
        return Worker("bench.jobs_tasks", env, queue, concurrency=concurrency, beat=beat,
                      name=name)

    def naive_worker(self) -> Worker:
        return Worker("bench.jobs_naive", self.naive_env, "benchnaive", name="naive")

    def user_obj(self) -> Any:
        from django.contrib.auth import get_user_model

        return get_user_model().objects.get(pk=self.user)

    # Latency -------------------------------------------------------------------------------

    async def latency(self, updates: int, gap: float, e2e: int) -> dict[str, Any]:
        from taskstream.jobs import job_start

        out: dict[str, Any] = {}
        owner = await asyncio.to_thread(self.user_obj)
        server = Server("hub", self.env, self.server_cpu, LOG_DIR).start()
        # Every call flushes (a 1 ms floor instead of 100 ms): each call is one sample.
        tracer = Tracer(self.env.redis.url) if self.trace else None
        worker = await asyncio.to_thread(
            self.hub_worker("lat", JOB_PROGRESS_INTERVAL=0.001,
                            environ={"TASKSTREAM_BENCH_TRACE": "1"} if tracer else None).start)
        try:
            client = await HubClient.connect(server.url(self.user), cookie=self.cookie)
            await client.subscribe(f"user:{self.user}")
            # enqueue → the first event the task publishes (job.started) at the client, one
            # job at a time: the baseline's "e2e" (enqueue → the task's group_send arrives).
            e2e_ms: list[float] = []
            start = tracer.job_start if tracer else job_start
            for i in range(e2e + 10):
                began = time.time_ns()
                job = await asyncio.to_thread(start, kind="bench.probe", owner=owner,
                                              params={"updates": 1})
                while True:
                    frame = await client.expect("event", 10)
                    if frame["event"] == "job.started" and frame["data"]["id"] == str(job.pk):
                        now = time.time_ns()
                        e2e_ms.append((now - began) / 1e6)
                        if tracer and i >= 10:
                            tracer.note(job.celery_task_id, began, now)
                    if frame["event"] == "job.succeeded" and frame["data"]["id"] == str(job.pk):
                        break
            # task's progress() → client, many updates of one job
            job = await asyncio.to_thread(job_start, kind="bench.probe", owner=owner,
                                          params={"updates": updates, "gap": gap})
            hop_ms: list[float] = []
            while True:
                frame = await client.expect("event", 10)
                now = time.time_ns()
                if frame["event"] == "job.progress" and frame["data"]["id"] == str(job.pk):
                    hop_ms.append((now - int(frame["data"]["progress"]["message"])) / 1e6)
                if frame["event"] == "job.succeeded" and frame["data"]["id"] == str(job.pk):
                    break
            await client.close()
            out["taskstream"] = {"task_to_client_ms": percentiles(hop_ms[10:]),
                                 "enqueue_to_client_ms": percentiles(e2e_ms[10:]),
                                 "samples": [len(hop_ms) - 10, len(e2e_ms) - 10]}
            if tracer:
                out["taskstream"]["trace"] = await asyncio.to_thread(tracer.summary)
        finally:
            await asyncio.to_thread(worker.stop)
            server.stop()
        if self.naive:
            out["naive"] = await self.naive_latency(updates, gap, e2e)
        return out

    async def naive_latency(self, updates: int, gap: float, e2e: int) -> dict[str, Any]:
        server = Server("naive", self.env, self.server_cpu, LOG_DIR).start()
        worker = await asyncio.to_thread(self.naive_worker().start)
        try:
            from celery import Celery

            app = Celery("naive-client", broker=self.naive_env["NAIVE_BROKER_URL"])
            app.conf.task_default_queue = "benchnaive"
            async with websockets.connect(server.url(self.user), max_size=None) as ws:
                await asyncio.sleep(0.2)  # group_add happens after accept
                hop_ms: list[float] = []
                e2e_ms: list[float] = []
                # The naive pattern has no progress API: one task per event, sent `gap` apart
                # for the task → client hop, then one at a time for enqueue → client.
                for i in range(updates + e2e + 20):
                    began = time.time_ns()
                    await asyncio.to_thread(app.send_task, "naive.progress",
                                            args=[self.user, began])
                    payload = json.loads(await asyncio.wait_for(ws.recv(), 10))
                    now = time.time_ns()
                    hop_ms.append((now - payload["task_ns"]) / 1e6)
                    e2e_ms.append((now - payload["enqueued_ns"]) / 1e6)
                    if i < updates:
                        await asyncio.sleep(gap)
            return {"task_to_client_ms": percentiles(hop_ms[10:]),
                    "enqueue_to_client_ms": percentiles(e2e_ms[10:]),
                    "samples": len(hop_ms) - 10}
        finally:
            await asyncio.to_thread(worker.stop)
            server.stop()

    # Throughput ----------------------------------------------------------------------------

    async def throughput(self, jobs: int, plain: int, naive: int) -> dict[str, Any]:
        """Each pattern: enqueue a batch with no worker running, then start 2 worker
        processes and time the drain (the baseline's "drain" mode): enqueue/s and done/s."""
        import redis as redis_lib
        from celery import Celery

        from taskstream.jobs import job_start
        from taskstream.jobs.models import Job

        owner = await asyncio.to_thread(self.user_obj)
        out: dict[str, Any] = {}

        def enqueue_jobs() -> float:
            Job.objects.all().delete()
            began = time.monotonic()
            for _ in range(jobs):
                job_start(kind="bench.noop", owner=owner, params={"updates": 10})
            return time.monotonic() - began

        def drain_jobs() -> tuple[float, dict[str, float]]:
            worker = self.hub_worker("tput").start()
            meter = CpuMeter(worker, redis_pid)
            began = time.monotonic()
            try:
                while Job.objects.filter(state="succeeded").count() < jobs:
                    time.sleep(0.02)
                return time.monotonic() - began, meter.per_unit_ms(jobs)
            finally:
                worker.stop()

        assert self.env.redis.proc is not None
        redis_pid = self.env.redis.proc.pid
        enqueue_s = await asyncio.to_thread(enqueue_jobs)
        drain_s, cpu_ms = await asyncio.to_thread(drain_jobs)
        out["livetask"] = {"jobs": jobs, "enqueue_per_s": round(jobs / enqueue_s, 1),
                           "drain_s": round(drain_s, 3), "jobs_per_s": round(jobs / drain_s, 1),
                           "cpu_ms_per_job": cpu_ms}

        counter = redis_lib.Redis.from_url(self.naive_env["NAIVE_REDIS_URL"])
        app = Celery("naive-client", broker=self.naive_env["NAIVE_BROKER_URL"])
        app.conf.task_default_queue = "benchnaive"

        def naive_batch(name: str, count: int, args: list[Any]) -> dict[str, Any]:
            counter.delete("naivebench:done")
            began = time.monotonic()
            for _ in range(count):
                app.send_task(name, args=args)
            enqueue = time.monotonic() - began
            worker = self.naive_worker().start()
            meter = CpuMeter(worker, redis_pid)
            began = time.monotonic()
            try:
                while int(counter.get("naivebench:done") or 0) < count:
                    time.sleep(0.02)
                drain = time.monotonic() - began
                cpu_ms = meter.per_unit_ms(count)
            finally:
                worker.stop()
            return {"tasks": count, "enqueue_per_s": round(count / enqueue, 1),
                    "drain_s": round(drain, 3), "tasks_per_s": round(count / drain, 1),
                    "cpu_ms_per_task": cpu_ms}

        out["plain_celery_noop"] = await asyncio.to_thread(naive_batch, "naive.noop", plain, [])
        live = out["livetask"]["jobs_per_s"]
        if self.naive:
            # The guides' report task with a browser listening: 11 group_sends per task.
            server = Server("naive", self.env, self.server_cpu, LOG_DIR).start()
            try:
                async with websockets.connect(server.url(self.user), max_size=None) as ws:
                    async def read_all() -> None:
                        with contextlib.suppress(Exception):
                            while True:
                                await ws.recv()

                    reader = asyncio.ensure_future(read_all())
                    out["naive_process_report"] = await asyncio.to_thread(
                        naive_batch, "naive.process_report", naive, [self.user, 10])
                    reader.cancel()
            finally:
                server.stop()
            out["ratio_livetask_vs_naive"] = round(
                live / out["naive_process_report"]["tasks_per_s"], 3)
        out["ratio_livetask_vs_plain"] = round(live / out["plain_celery_noop"]["tasks_per_s"], 3)
        out["cpu_ratio_livetask_vs_plain"] = round(
            out["livetask"]["cpu_ms_per_job"]["total"]
            / out["plain_celery_noop"]["cpu_ms_per_task"]["total"], 3)
        return out

    # Job starts over HTTP ------------------------------------------------------------------

    async def http_starts(self, starts: int) -> dict[str, Any]:
        """``POST /api/jobs/`` ``starts`` times in a row, one user, one keep-alive connection
        (issue 16: ≥ 300/s, p50 ≤ 20 ms, no 5xx); the server's CPU per start and, on
        PostgreSQL, the database connections the server holds afterwards."""
        import dataclasses
        import http.client
        import secrets

        # The per-user cap on unfinished jobs would refuse most of them (no worker runs).
        settings = {**json.loads(self.env.hub_env.get("TASKSTREAM_JSON") or "{}"),
                    "JOB_MAX_ACTIVE_PER_USER": starts + 100}
        env = dataclasses.replace(self.env, hub_env={**self.env.hub_env,
                                                     "TASKSTREAM_JSON": json.dumps(settings)})
        server = Server("hub", env, self.server_cpu, LOG_DIR).start()
        assert server.ps is not None
        csrf = secrets.token_hex(16)  # any secret: the cookie and the header must match
        headers = {"Cookie": f"{self.cookie}; csrftoken={csrf}", "X-CSRFToken": csrf,
                   "Content-Type": "application/json", "Host": "localhost"}
        body = json.dumps({"kind": "demo.noop", "params": {"updates": 1}})

        def run() -> tuple[list[float], dict[int, int], float]:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            took: list[float] = []
            codes: dict[int, int] = {}
            began = time.monotonic()
            for _ in range(starts):
                t = time.perf_counter()
                conn.request("POST", "/api/jobs/", body=body, headers=headers)
                answer = conn.getresponse()
                answer.read()
                took.append((time.perf_counter() - t) * 1000)
                codes[answer.status] = codes.get(answer.status, 0) + 1
            conn.close()
            return took, codes, time.monotonic() - began

        try:
            cpu_before = cpu_seconds(server.ps)
            took, codes, wall = await asyncio.to_thread(run)
            cpu_ms = (cpu_seconds(server.ps) - cpu_before) / starts * 1000
            connections = await asyncio.to_thread(self._server_db_connections, server.ps.pid)
        finally:
            server.stop()
        return {"starts": starts, "per_s": round(starts / wall, 1),
                "request_ms": percentiles(took), "status": codes,
                "server_cpu_ms_per_start": round(cpu_ms, 3),
                "server_db_connections_after": connections,
                "database": self.env.hub_env.get("DATABASE_URL", "").split(":", 1)[0]}

    @staticmethod
    def _server_db_connections(pid: int) -> int | None:
        """Connections the server process holds to PostgreSQL (None on SQLite)."""
        from django.db import connection

        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE client_port IN "
                           "(SELECT unnest(%s::int[]))",
                           [[c.laddr.port for c in psutil.Process(pid).net_connections("tcp")
                             if c.raddr and c.raddr.port == 5432]])
            return int(cursor.fetchone()[0])

    # Progress cost -------------------------------------------------------------------------

    async def progress_cost(self, repeat: int) -> dict[str, Any]:
        """How often one job may call ``progress()`` and stay within 5 % of its speed."""
        from taskstream.conf import conf
        from taskstream.jobs import job_start
        from taskstream.jobs.models import Job

        owner = await asyncio.to_thread(self.user_obj)
        worker = await asyncio.to_thread(self.hub_worker("cost", concurrency=1).start)

        def run() -> dict[str, float]:
            job = job_start(kind="bench.progress_cost", owner=owner, params={})
            while True:
                job.refresh_from_db()
                if job.state == "succeeded":
                    return dict(job.result)
                if job.state in ("failed", "cancelled"):
                    raise RuntimeError(job.error_message)
                time.sleep(0.05)

        try:
            runs = [await asyncio.to_thread(run) for _ in range(repeat)]
        finally:
            await asyncio.to_thread(worker.stop)
        await asyncio.to_thread(lambda: Job.objects.all().delete())
        call_us = sorted(r["call_us"] for r in runs)[len(runs) // 2]
        share = sorted(r["background_share"] for r in runs)[len(runs) // 2]
        budget = 0.05 - share
        return {"runs": runs, "call_us": round(call_us, 3),
                "progress_interval_s": conf.JOB_PROGRESS_INTERVAL,
                "background_share_pct": round(share * 100, 2),
                "max_calls_per_s_within_5pct": round(budget / (call_us / 1e6))
                if budget > 0 and call_us > 0 else None}

    # Recovery ------------------------------------------------------------------------------

    async def recovery(self, steps: int, step_seconds: float, kill_at: int) -> dict[str, Any]:
        from taskstream.jobs import job_start
        from taskstream.jobs.models import Job

        owner = await asyncio.to_thread(self.user_obj)
        queue = "benchrecovery"
        doomed = await asyncio.to_thread(
            self.hub_worker("doomed", queue, 1, **RECOVERY_SETTINGS).start)
        job = await asyncio.to_thread(job_start, kind="bench.slow", owner=owner, queue=queue,
                                      params={"steps": steps, "step_seconds": step_seconds})
        while (await Job.objects.aget(pk=job.pk)).progress_current < kill_at:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        # A second worker (with beat: the reaper) is already up, as in a real deployment.
        survivor = await asyncio.to_thread(
            self.hub_worker("survivor", queue, 1, beat=True, **RECOVERY_SETTINGS).start)
        try:
            at_kill = (await Job.objects.aget(pk=job.pk)).progress_current
            killed = time.monotonic()
            await asyncio.to_thread(doomed.kill)
            rerun = None
            while True:
                current = await Job.objects.aget(pk=job.pk)
                if rerun is None and current.attempt >= 2 and current.state == "running":
                    rerun = time.monotonic() - killed
                if current.state in ("succeeded", "failed"):
                    break
                await asyncio.sleep(0.01)
            done = time.monotonic() - killed
        finally:
            await asyncio.to_thread(survivor.stop)
        return {"state": current.state, "attempts": current.attempt,
                "progress_at_kill": at_kill, "settings": RECOVERY_SETTINGS,
                "kill_to_running_again_s": round(rerun or done, 2),
                "kill_to_succeeded_s": round(done, 2),
                "rerun_work_s": round(steps * step_seconds, 2),
                "bound_with_defaults_s": "heartbeat timeout 60 + reaper interval 30 = 90 "
                                         "(Redis broker); RabbitMQ redelivers at once"}


def print_table(result: dict[str, Any]) -> None:
    sc = result["scenarios"]
    lines = []
    if "latency" in sc:
        for name in ("taskstream", "naive"):
            if name not in sc["latency"]:
                continue
            lat = sc["latency"][name]
            lines.append(f"latency {name:<10} task→client p50/p99 "
                         f"{lat['task_to_client_ms']['50']}/{lat['task_to_client_ms']['99']} ms"
                         f"  enqueue→client p50/p99 {lat['enqueue_to_client_ms']['50']}/"
                         f"{lat['enqueue_to_client_ms']['99']} ms")
        trace = sc["latency"]["taskstream"].get("trace")
        if trace:
            lines.append(f"trace of enqueue → client ({trace['samples']} jobs), p50 / p99 ms per "
                         f"step; total {trace['total_ms']['50']} / {trace['total_ms']['99']}")
            for step, p in trace["steps_ms"].items():
                lines.append(f"  {step:<48} {p['50']} / {p['99']}")
    if "throughput" in sc:
        t = sc["throughput"]
        naive = (f", naive process_report {t['naive_process_report']['tasks_per_s']}/s"
                 if "naive_process_report" in t else "")
        lines.append(f"throughput (drain, 2 processes) LiveTask {t['livetask']['jobs_per_s']} "
                     f"jobs/s (enqueue {t['livetask']['enqueue_per_s']}/s), plain Celery "
                     f"{t['plain_celery_noop']['tasks_per_s']}/s{naive}")
        lines.append(f"CPU per job (worker main + children + Redis, ms): LiveTask "
                     f"{t['livetask']['cpu_ms_per_job']}, plain Celery "
                     f"{t['plain_celery_noop']['cpu_ms_per_task']}; LiveTask / plain "
                     f"{t['cpu_ratio_livetask_vs_plain']}")
    if "http_starts" in sc:
        h = sc["http_starts"]
        lines.append(f"job starts over HTTP ({h['starts']} in a row, {h['database']}): "
                     f"{h['per_s']}/s, request p50/p99 {h['request_ms']['50']}/"
                     f"{h['request_ms']['99']} ms, status {h['status']}, server CPU "
                     f"{h['server_cpu_ms_per_start']} ms per start, database connections "
                     f"held after: {h['server_db_connections_after']}")
    if "progress_cost" in sc:
        p = sc["progress_cost"]
        lines.append(f"progress() {p['call_us']} µs/call; flushes every "
                     f"{p['progress_interval_s']} s in the background take "
                     f"{p['background_share_pct']}% of the task: "
                     f"{p['max_calls_per_s_within_5pct']} calls/s within 5 %")
    if "recovery" in sc:
        r = sc["recovery"]
        lines.append(f"recovery kill→running {r['kill_to_running_again_s']} s, kill→succeeded "
                     f"{r['kill_to_succeeded_s']} s ({r['state']}, {r['attempts']} attempts)")
    print("\n".join(lines))


async def run_all(args: argparse.Namespace) -> dict[str, Any]:
    sizes = QUICK if args.quick else FULL
    only = set(args.only.split(",")) if args.only else set(sizes)
    env = Env.create(client_cpu=args.client_cpu, n_users=2)
    if args.broker:  # e.g. RabbitMQ for the recovery scenario; the hub log stays on Redis
        env.hub_env["CELERY_BROKER_URL"] = args.broker
    # This process starts jobs like a web process would: the same settings and database.
    os.environ.update({**env.hub_env, "CELERY_TASK_DEFAULT_QUEUE": "benchjobs"})
    import django

    django.setup()
    import bench.jobs_tasks  # registers the bench LiveTasks here too

    bench = Bench(env, args.server_cpu, naive=not args.no_naive, trace=args.trace)
    out: dict[str, Any] = {}
    try:
        for name in sizes:
            if name in only:
                began = time.monotonic()
                print(f"{name:>14} ...", end=" ", flush=True)
                out[name] = await getattr(bench, name)(**sizes[name])
                print(f"{time.monotonic() - began:.1f} s", flush=True)
    finally:
        env.close()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.jobs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", default="", help="comma-separated: " + ", ".join(FULL))
    parser.add_argument("--broker", default="",
                        help="Celery broker URL of the taskstream workers (default: the "
                             "embedded Redis)")
    parser.add_argument("--no-naive", action="store_true",
                        help="leave out the naive pattern's runs (latency, process_report)")
    parser.add_argument("--trace", action="store_true",
                        help="latency: one trace per job of enqueue → client (job_start, "
                             "commit, enqueue, broker, worker, claim, first event, client)")
    parser.add_argument("--label", default="",
                        help="added to the results file's name (jobs-<ts>-<label>.json), e.g. "
                             "the tree a before/after comparison ran")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args(argv)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)
    ts = started.strftime("%Y%m%dT%H%M%SZ")
    result: dict[str, Any] = {
        "bench": "jobs", "ts": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "mode": "quick" if args.quick else "full", "argv": sys.argv[1:],
        "machine": {**machine(), "load_avg_at_start": os.getloadavg()},
        "sizes": QUICK if args.quick else FULL,
        "setup": "SQLite + one embedded Redis (hub log + broker); workers prefork -c 2; "
                 "ASGI server pinned to --server-cpu",
    }
    began = time.monotonic()
    result["scenarios"] = asyncio.run(run_all(args))
    result["wall_s"] = round(time.monotonic() - began, 1)
    result["machine"]["load_avg_at_end"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = ("-amqp" if args.broker.startswith("amqp") else "") + (
        f"-{args.label}" if args.label else "")
    name = f"jobs-{ts}{suffix}.json"
    text = json.dumps(result, indent=1, ensure_ascii=False)
    (RESULTS / name).write_text(text)
    if not args.only and not args.quick and not args.broker and not args.no_naive:
        (RESULTS / "jobs-latest.json").write_text(text)
    print()
    print_table(result)
    print(f"\n{result['wall_s']} s; wrote bench/results/{name}")


if __name__ == "__main__":
    main()
