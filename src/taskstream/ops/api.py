"""``/api/ops/``: the audit trail and the staff actions on jobs (staff only, CSRF on writes).

Signed out is 401 (the API root's session auth); signed in without staff is 403 ``forbidden``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from taskstream.api import ApiError, ApiErrorOut
from taskstream.ops import selectors, services
from taskstream.ops.exceptions import StaffOnly
from taskstream.ops.models import AuditRecord

router = Router(tags=["ops"])


class AuditOut(Schema):
    id: int
    actor: str
    action: str
    target_type: str
    target_id: str
    source: str
    outcome: str
    detail: str
    created_at: datetime


class AuditPageOut(Schema):
    items: list[AuditOut]
    count: int
    page: int
    pages: int


class AuditFilter(Schema):
    page: int = Field(1, ge=1, le=100_000)
    action: str | None = Field(None, max_length=64)
    outcome: AuditRecord.Outcome | None = None


class RetryFailedIn(Schema):
    kind: str = Field(min_length=1, max_length=200)


class RetryFailedOut(Schema):
    kind: str
    queued: int


class OverviewOut(Schema):
    succeeded: int
    failed: int
    failure_rate: float | None
    queued: int
    running: int
    stuck: int
    workers: int | None
    minutes: list[tuple[int, int]]
    chart_svg: str


class OpsJobOut(Schema):
    id: uuid.UUID
    kind: str
    state: str


def _staff(request: HttpRequest) -> None:
    user = request.user
    if not (getattr(user, "is_staff", False) and getattr(user, "is_active", False)):
        raise ApiError(403, "forbidden", "staff only")


def _job(job_id: str) -> Any:
    from taskstream.jobs.models import Job

    try:
        return Job.objects.get(pk=uuid.UUID(job_id))
    except (ValueError, Job.DoesNotExist):
        raise ApiError(404, "not_found", "no such job") from None


def _record(record: AuditRecord) -> dict[str, Any]:
    return {**services.audit_payload(record), "created_at": record.created_at}


@router.get("/ops/audit/", response={200: AuditPageOut, 403: ApiErrorOut})
def audit_index(request: HttpRequest, filters: Query[AuditFilter]) -> dict[str, Any]:
    """The audit trail, newest first: who cancelled or retried what, when, and how it went."""
    _staff(request)
    found = selectors.audit_page(page=filters.page, action=filters.action,
                                 outcome=filters.outcome)
    return {"items": [_record(r) for r in found.records], "count": found.count,
            "page": found.page, "pages": found.pages}


def overview_data() -> dict[str, Any]:
    from taskstream.ops.chart import throughput_svg
    from taskstream.ops.workers import workers_up

    found = selectors.jobs_overview()
    return {"succeeded": found.succeeded, "failed": found.failed,
            "failure_rate": found.failure_rate, "queued": found.queued,
            "running": found.running, "stuck": found.stuck, "workers": workers_up(),
            "minutes": found.minutes, "chart_svg": throughput_svg(found.minutes)}


@router.get("/ops/overview/", response={200: OverviewOut, 403: ApiErrorOut})
def overview(request: HttpRequest) -> dict[str, Any]:
    """The last hour (finished per minute, failure rate, an SVG chart) and the queue now."""
    _staff(request)
    return overview_data()


@router.post("/ops/jobs/{job_id}/cancel/",
             response={200: OpsJobOut, 403: ApiErrorOut, 404: ApiErrorOut, 409: ApiErrorOut})
def ops_cancel(request: HttpRequest, job_id: str) -> Any:
    """Cancel anyone's job (audited)."""
    from taskstream.jobs.exceptions import IllegalTransition

    _staff(request)
    try:
        return services.ops_job_cancel(job=_job(job_id), actor=request.user)
    except IllegalTransition as exc:
        raise ApiError(409, "not_cancellable", str(exc)) from None
    except StaffOnly as exc:
        raise ApiError(403, "forbidden", str(exc)) from None


@router.post("/ops/jobs/{job_id}/retry/",
             response={202: OpsJobOut, 403: ApiErrorOut, 404: ApiErrorOut, 409: ApiErrorOut})
def ops_retry(request: HttpRequest, job_id: str) -> Any:
    """Queue anyone's failed or cancelled job again (audited)."""
    from taskstream.jobs.exceptions import IllegalTransition

    _staff(request)
    try:
        return Status(202, services.ops_job_retry(job=_job(job_id), actor=request.user))
    except IllegalTransition as exc:
        raise ApiError(409, "not_retryable", str(exc)) from None
    except StaffOnly as exc:
        raise ApiError(403, "forbidden", str(exc)) from None


@router.post("/ops/jobs/retry-failed/", response={202: RetryFailedOut, 403: ApiErrorOut})
def ops_retry_failed(request: HttpRequest, body: RetryFailedIn) -> Any:
    """Queue every failed job of one kind again (at most 500 per call; audited)."""
    _staff(request)
    try:
        queued = services.ops_retry_failed(kind=body.kind, actor=request.user)
    except StaffOnly as exc:
        raise ApiError(403, "forbidden", str(exc)) from None
    return Status(202, {"kind": body.kind, "queued": queued})
