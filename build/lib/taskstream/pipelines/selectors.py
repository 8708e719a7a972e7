"""Reads of pipelines: what the owner may see, and the snapshot the page draws."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from taskstream.jobs.models import Job
from taskstream.jobs.snapshot import job_snapshot
from taskstream.pipelines.models import Chunk, Pipeline
from taskstream.pipelines.services import STEP_LABELS, STEPS, report_url


def pipeline_list(*, user: Any) -> QuerySet[Pipeline]:
    """The user's own pipelines, newest first (staff see only theirs here too)."""
    return Pipeline.objects.filter(owner_id=user.pk).select_related("job", "upload")


def pipeline_get(*, user: Any, pipeline_id: Any) -> Pipeline | None:
    """The pipeline if ``user`` owns it; anyone else gets ``None`` (a 404, not a 403)."""
    return pipeline_list(user=user).filter(pk=pipeline_id).first()


def _step(job: Job) -> dict[str, Any]:
    snap = job_snapshot(job)
    return {"name": STEP_LABELS[job.kind], "job": snap}


def pipeline_snapshot(pipeline: Pipeline, *, with_chunks: bool = True) -> dict[str, Any]:
    job = pipeline.job
    children = {c.kind: c for c in Job.objects.filter(parent_id=job.pk, kind__in=STEPS)}
    data: dict[str, Any] = {
        "id": str(pipeline.pk),
        "kind": pipeline.kind,
        "job": job_snapshot(job),
        "upload": {"id": str(pipeline.upload_id), "name": pipeline.upload.original_name,
                   "size": pipeline.upload.size, "sha256": pipeline.upload.sha256},
        "columns": pipeline.columns,
        "total_rows": pipeline.total_rows,
        "summary": pipeline.summary,
        "steps": [_step(children[kind]) for kind in STEPS if kind in children],
        "reports": ({"csv": report_url(pipeline, "csv"), "html": report_url(pipeline, "html")}
                    if pipeline.report_csv else None),
        "created_at": job_snapshot(job)["created_at"],
    }
    if with_chunks:
        data["chunks"] = [
            {"index": c.index, "first_line": c.first_line, "rows": c.rows,
             "job": job_snapshot(c.job)}
            for c in Chunk.objects.filter(pipeline=pipeline).select_related("job")]
    return data
