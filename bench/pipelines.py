"""``make bench-pipelines``: rows/s through the pipeline canvas vs the same work as one task.

A CSV of ``--rows`` rows (1,000,000 by default, ~34 MB) is processed twice on a fresh
SQLite + embedded Redis, each time by a fresh worker with 2 prefork processes:

* pipeline: upload → validate → split → chord(group(chunks), aggregate) → render, every
  step and chunk a job with live progress (what the demo page shows);
* plain: one Celery task reading the stored file start to end with the same summary code.

Reported: wall time and rows/s of each, the canvas overhead (pipeline ÷ plain wall time,
and pipeline ÷ plain CPU time of the worker's pool processes, which parallelism does not
flatter),
the steps' timings, and each worker's memory high-water mark (VmHWM of its pool
processes, idle and after the run): a worker that held the whole file would show it.
Results: ``bench/results/pipelines-<ts>.json`` and ``pipelines-latest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.harness import Env
from bench.hub import machine
from bench.jobs import Worker

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
QUEUE = "benchpipes"


def make_csv(rows: int, path: Path) -> int:
    sys.path.insert(0, str(ROOT))
    from tests.pipelines.data import make_csv as generate

    block = 100_000
    with path.open("wb") as out:
        out.write(generate(0))
        for start in range(0, rows, block):
            data = generate(min(block, rows - start), seed=start)
            out.write(data[data.index(b"\n") + 1:])  # without the header
    return path.stat().st_size


def hwm_mb(worker: Worker) -> list[float]:
    """Peak RSS (VmHWM) of each pool process of ``worker``, in MB."""
    assert worker.proc is not None
    out = []
    for child in psutil.Process(worker.proc.pid).children(recursive=True):
        with open(f"/proc/{child.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    out.append(round(int(line.split()[1]) / 1024, 1))
    return out


def cpu_s(worker: Worker) -> float:
    """CPU seconds (user + system) the pool processes of ``worker`` used so far."""
    assert worker.proc is not None
    total = 0.0
    for child in psutil.Process(worker.proc.pid).children(recursive=True):
        times = child.cpu_times()
        total += times.user + times.system
    return total


def run(rows: int, chunk_rows: int) -> dict[str, Any]:
    env = Env.create(client_cpu=0, n_users=1)
    settings = {"PIPELINE_MAX_UPLOAD_BYTES": 1 << 30, "PIPELINE_CHUNK_ROWS": chunk_rows}
    worker_env = {**env.hub_env, "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
                  "TASKSTREAM_JSON": json.dumps(settings)}
    os.environ.update(worker_env)
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from taskstream.jobs.models import Job
    from taskstream.pipelines import services
    from taskstream.pipelines.models import Pipeline

    out: dict[str, Any] = {"rows": rows, "chunk_rows": chunk_rows, "workers": "1 × 2 prefork"}
    try:
        path = env.tmp / "input.csv"
        out["bytes"] = make_csv(rows, path)
        owner = get_user_model().objects.get(pk=env.users[0])
        began = time.perf_counter()
        with path.open("rb") as f:
            upload, _ = services.upload_create(owner=owner, file=f, original_name="bench.csv")
        out["upload_s"] = round(time.perf_counter() - began, 3)

        # The pipeline --------------------------------------------------------------------
        worker = Worker("bench.pipelines_tasks", worker_env, QUEUE, name="pipes").start()
        try:
            out["idle_worker_hwm_mb"] = hwm_mb(worker)
            cpu = cpu_s(worker)
            began = time.perf_counter()
            pipeline, _ = services.pipeline_start(upload=upload, owner=owner)
            while (job := Job.objects.get(pk=pipeline.job_id)).state not in (
                    "succeeded", "failed", "cancelled"):
                time.sleep(0.02)
            wall = time.perf_counter() - began
            if job.state != "succeeded":
                raise RuntimeError(f"pipeline {job.state}: {job.error_message}")
            time.sleep(0.5)  # let the last child jobs write their end
            out["pipeline"] = {"seconds": round(wall, 3), "rows_per_s": round(rows / wall),
                               "worker_cpu_s": round(cpu_s(worker) - cpu, 2),
                               "worker_hwm_mb": hwm_mb(worker), "steps": steps(job)}
        finally:
            worker.stop()

        # The same work as one plain task -------------------------------------------------
        pipeline = Pipeline.objects.get(pk=pipeline.pk)
        worker = Worker("bench.pipelines_tasks", worker_env, QUEUE, name="plain").start()
        try:
            from bench.pipelines_tasks import pipeline_plain

            cpu = cpu_s(worker)
            began = time.perf_counter()
            result = pipeline_plain.apply_async(kwargs={
                "stored_name": upload.stored_name, "encoding": upload.encoding,
                "delimiter": upload.delimiter, "columns": pipeline.columns,
                "header_end": pipeline.header_end}, queue=QUEUE).get(timeout=600)
            wall = time.perf_counter() - began
            assert result["rows"] == pipeline.summary["rows"], (result, pipeline.summary)
            out["plain"] = {"seconds": round(wall, 3), "rows_per_s": round(rows / wall),
                            "worker_cpu_s": round(cpu_s(worker) - cpu, 2),
                            "worker_hwm_mb": hwm_mb(worker)}
        finally:
            worker.stop()
        out["canvas_overhead_ratio"] = round(out["pipeline"]["seconds"]
                                             / out["plain"]["seconds"], 2)
        # Wall time rewards the pipeline's parallelism; CPU time is the work it adds.
        out["canvas_cpu_ratio"] = round(out["pipeline"]["worker_cpu_s"]
                                        / max(out["plain"]["worker_cpu_s"], 1e-9), 2)
        out["load_average"] = os.getloadavg()
    finally:
        env.close()
    return out


def steps(job: Any) -> dict[str, Any]:
    from taskstream.jobs.models import Job

    timings: dict[str, Any] = {}
    chunks = []
    for child in Job.objects.filter(parent=job):
        if child.started_at is None or child.finished_at is None:
            continue
        span = (child.finished_at - child.started_at).total_seconds()
        if child.kind.endswith(".chunk"):
            chunks.append(span)
        else:
            timings[child.kind.rsplit(".", 1)[-1] + "_s"] = round(span, 3)
    if chunks:
        timings["chunks"] = len(chunks)
        timings["chunk_mean_s"] = round(sum(chunks) / len(chunks), 3)
        starts = [c.started_at for c in Job.objects.filter(parent=job, kind__endswith=".chunk")]
        ends = [c.finished_at for c in Job.objects.filter(parent=job, kind__endswith=".chunk")]
        timings["chunk_phase_s"] = round((max(ends) - min(starts)).total_seconds(), 3)
    return timings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    args = parser.parse_args(argv)
    rows = 100_000 if args.quick else args.rows
    result = {"machine": machine(), "when": datetime.now(UTC).isoformat(timespec="seconds"),
              "pipelines": run(rows, args.chunk_rows if not args.quick else 10_000)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(result, indent=2)
    (RESULTS / f"pipelines-{stamp}.json").write_text(text)
    if not args.quick:
        (RESULTS / "pipelines-latest.json").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
