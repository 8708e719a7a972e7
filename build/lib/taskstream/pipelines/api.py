"""``/api/pipelines/``: upload a CSV, watch, cancel, retry, download its reports.

Someone else's pipeline or report is a 404, never a 403. The upload reads the request
body itself, through a handler that stops at the size limit, so it checks the session
and the CSRF token by hand (ninja's auth would parse the whole body first).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import FileResponse, HttpRequest
from django.middleware.csrf import CsrfViewMiddleware
from ninja import Router
from ninja.responses import Status

from taskstream.api import ApiError
from taskstream.conf import conf
from taskstream.hub.cursors_api import latest_cursor
from taskstream.jobs.exceptions import IllegalTransition
from taskstream.pipelines import selectors, services, uploads
from taskstream.pipelines import storage as files
from taskstream.pipelines.exceptions import (
    PipelineBusy,
    PipelineError,
    UnsupportedUpload,
    UploadTooLarge,
)
from taskstream.pipelines.kinds import pipeline_kinds
from taskstream.pipelines.models import Pipeline

router = Router(tags=["pipelines"])


def _own(request: HttpRequest, pipeline_id: str) -> Pipeline:
    try:
        pk = uuid.UUID(pipeline_id)
    except ValueError:
        raise ApiError(404, "not_found", "no such pipeline") from None
    pipeline = selectors.pipeline_get(user=request.user, pipeline_id=pk)
    if pipeline is None:
        raise ApiError(404, "not_found", "no such pipeline")
    return pipeline


def _detail(request: HttpRequest, pipeline: Pipeline) -> dict[str, Any]:
    # Cursors first, state second: subscribing since them misses nothing in between.
    cursors = {"job": latest_cursor(pipeline.job.topic),
               "user": latest_cursor(f"user:{request.user.pk}")}
    pipeline.job.refresh_from_db()
    return {**selectors.pipeline_snapshot(pipeline), "cursors": cursors}


def _too_large() -> ApiError:
    return ApiError(413, "too_large",
                    f"the file is larger than {conf.PIPELINE_MAX_UPLOAD_BYTES} bytes")


@router.post("/pipelines/", auth=None, response={202: dict[str, Any]})
def pipeline_create(request: HttpRequest) -> Status[dict[str, Any]]:
    """Upload a CSV (multipart field ``file``; ``force=1`` to process the same file again;
    ``kind``) and start its pipeline. 202 with the pipeline; ``reused`` when the same
    file was processed before."""
    if not request.user.is_authenticated:
        raise ApiError(401, "unauthenticated", "sign in first")
    if uploads.declared_too_large(request):
        raise _too_large()
    handler = uploads.install_handler(request)
    # Reads the body (through the handler) for the token; a bad token is a 403.
    refused = CsrfViewMiddleware(lambda r: None).process_view(  # type: ignore[arg-type]
        request, None, (), {})  # type: ignore[arg-type]
    if handler.too_large:
        raise _too_large()
    if refused is not None:
        raise ApiError(403, "csrf_failed", "CSRF token missing or incorrect")
    upload_file = request.FILES.get(uploads.FIELD)
    if handler.too_large:
        raise _too_large()
    if upload_file is None:
        raise ApiError(400, "no_file", "send the CSV in the multipart field 'file'")
    kind = request.POST.get("kind") or "summary"
    if kind not in pipeline_kinds():
        raise ApiError(400, "unknown_kind", f"no pipeline kind {kind[:50]!r}")
    force = request.POST.get("force", "") in ("1", "true", "on", "yes")
    try:
        # Hashing, sniffing and storing the file happen outside any transaction (SQLite
        # takes its write lock at BEGIN): only the rows are written inside one.
        upload, _ = services.upload_create(
            owner=request.user, file=upload_file,
            original_name=getattr(upload_file, "original_name", ""))
        pipeline, started = services.pipeline_start(upload=upload, owner=request.user,
                                                    kind=kind, force=force)
    except UploadTooLarge:
        raise _too_large() from None
    except UnsupportedUpload as exc:
        raise ApiError(415, "unsupported_type", str(exc)) from None
    finally:
        upload_file.close()
    return Status(202, {**_detail(request, pipeline), "reused": not started})


@router.get("/pipelines/", response=list[dict[str, Any]])
def pipeline_index(request: HttpRequest) -> list[dict[str, Any]]:
    """My last 20 pipelines, newest first (without their chunks)."""
    return [selectors.pipeline_snapshot(p, with_chunks=False)
            for p in selectors.pipeline_list(user=request.user)[:20]]


@router.get("/pipelines/{pipeline_id}/", response=dict[str, Any])
def pipeline_show(request: HttpRequest, pipeline_id: str) -> dict[str, Any]:
    """The pipeline with its steps and chunks, and cursors to follow it from."""
    return _detail(request, _own(request, pipeline_id))


@router.post("/pipelines/{pipeline_id}/cancel/", response=dict[str, Any])
def pipeline_cancel(request: HttpRequest, pipeline_id: str) -> dict[str, Any]:
    """Cancel: queued chunks never run, running ones stop at their next checkpoint."""
    pipeline = _own(request, pipeline_id)
    try:
        services.pipeline_cancel(pipeline=pipeline, actor=request.user)
    except IllegalTransition as exc:
        raise ApiError(409, "not_cancellable", str(exc)) from None
    return _detail(request, pipeline)


@router.post("/pipelines/{pipeline_id}/retry/", response={202: dict[str, Any]})
def pipeline_retry(request: HttpRequest, pipeline_id: str) -> Status[dict[str, Any]]:
    """Run a failed or cancelled pipeline again; chunks already done are kept."""
    pipeline = _own(request, pipeline_id)
    try:
        services.pipeline_retry(pipeline=pipeline, actor=request.user)
    except (IllegalTransition, PipelineBusy) as exc:
        raise ApiError(409, "not_retryable", str(exc)) from None
    return Status(202, _detail(request, pipeline))


def _report(request: HttpRequest, pipeline_id: str, ext: str) -> FileResponse:
    pipeline = _own(request, pipeline_id)
    name = pipeline.report_csv if ext == "csv" else pipeline.report_html
    if not name:
        raise ApiError(404, "not_found", "this pipeline has no report (yet)")
    try:
        handle = files.pipeline_storage().open(name, "rb")
    except (FileNotFoundError, PipelineError):
        raise ApiError(404, "not_found", "the report is gone") from None
    base = (pipeline.upload.original_name or "upload").rsplit(".", 1)[0]
    safe = "".join(c for c in base if c.isalnum() or c in "-_ ")[:60].strip() or "report"
    response = FileResponse(handle, as_attachment=ext == "csv",
                            filename=f"{safe}-report.{ext}",
                            content_type="text/csv; charset=utf-8" if ext == "csv"
                            else "text/html; charset=utf-8")
    # The HTML holds data from the upload: no scripts, no requests, even if one slips in.
    response["Content-Security-Policy"] = ("default-src 'none'; style-src 'unsafe-inline'; "
                                           "img-src data:; sandbox")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


@router.get("/pipelines/{pipeline_id}/report.csv", url_name="pipeline_report_csv")
def pipeline_report_csv(request: HttpRequest, pipeline_id: str) -> FileResponse:
    """The report as CSV (formula-looking cells made inert); owner only."""
    return _report(request, pipeline_id, "csv")


@router.get("/pipelines/{pipeline_id}/report.html", url_name="pipeline_report_html")
def pipeline_report_html(request: HttpRequest, pipeline_id: str) -> FileResponse:
    """The report as an HTML page with a chart; owner only."""
    return _report(request, pipeline_id, "html")
