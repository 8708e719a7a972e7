"""``/api/jobs/``: start, list, inspect, cancel and retry jobs (session auth, CSRF on writes).

Someone else's job is a 404, never a 403: the API does not confirm that it exists.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from ninja import Header, Query, Router
from ninja.responses import Status

from taskstream.api import ApiError, ApiErrorOut
from taskstream.conf import conf
from taskstream.hub.cursors_api import latest_cursor
from taskstream.jobs import kinds, selectors, services
from taskstream.jobs.exceptions import (
    IdempotencyConflict,
    IllegalTransition,
    InvalidJobParams,
    TooManyJobs,
)
from taskstream.jobs.exceptions import UnknownJobKind as UnknownKind
from taskstream.jobs.models import Job
from taskstream.jobs.schemas import (
    JobAttemptsOut,
    JobDetailOut,
    JobFilter,
    JobKindOut,
    JobOut,
    JobPageOut,
    JobStartIn,
)
from taskstream.jobs.signals import job_action
from taskstream.jobs.snapshot import job_snapshot

router = Router(tags=["jobs"])


def _own_job(request: HttpRequest, job_id: str) -> Job:
    try:
        pk = uuid.UUID(job_id)
    except ValueError:
        raise ApiError(404, "not_found", "no such job") from None
    job = selectors.job_get(user=request.user, job_id=pk)
    if job is None:
        raise ApiError(404, "not_found", "no such job")
    return job


def _out(request: HttpRequest, job: Job) -> dict[str, Any]:
    return job_snapshot(job, with_traceback=bool(getattr(request.user, "is_staff", False)))


def _acted(job: Job, request: HttpRequest, action: str, *, refused: str | None = None) -> None:
    # Listeners (the ops app's audit trail) hear of every cancel and retry asked for here.
    job_action.send(sender=Job, job=job, actor=request.user, action=action,
                    outcome="refused" if refused is not None else "ok", detail=refused or "")


@router.get("/jobs/kinds/", response=list[JobKindOut])
def job_kinds(request: HttpRequest) -> list[dict[str, Any]]:
    """Job kinds this user may start, with the JSON schema of their params."""
    return [{"name": k.name, "label": k.label, "params_schema": k.params.model_json_schema()}
            for k in kinds.registered_kinds().values()
            if not k.staff_only or getattr(request.user, "is_staff", False)]


@router.post("/jobs/", response={202: JobDetailOut, 400: ApiErrorOut, 409: ApiErrorOut,
                                 429: ApiErrorOut})
def job_create(request: HttpRequest, body: JobStartIn,
               idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
               ) -> Status[dict[str, Any]]:
    """Start a job of a registered kind; 202 with its snapshot, topic and cursor."""
    key = body.idempotency_key or idempotency_key
    try:
        kind = kinds.http_kind(body.kind, request.user)
        params = kinds.validate_params(kind, body.params)
        with transaction.atomic():
            job = services.job_start(kind=kind.name, owner=request.user, params=params,
                                     idempotency_key=key,
                                     max_active=conf.JOB_MAX_ACTIVE_PER_USER)
            # The cursor before the state (see selectors.job_detail). A new job's topic is
            # still empty: subscribing since this cursor replays job.created onwards.
            cursor = latest_cursor(job.topic)
            job.refresh_from_db()
    except UnknownKind as exc:
        raise ApiError(400, exc.code, str(exc)) from None
    except InvalidJobParams as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'params'}: {e['msg']}"  # type: ignore[attr-defined]
            for e in exc.errors)
        raise ApiError(400, exc.code, f"{exc}: {problems}" if problems else str(exc)) from None
    except IdempotencyConflict as exc:
        raise ApiError(409, exc.code, str(exc)) from None
    except TooManyJobs as exc:
        raise ApiError(429, exc.code, str(exc)) from None
    return Status(202, {**_out(request, job), "cursor": cursor})


@router.get("/jobs/", response=JobPageOut)
def job_index(request: HttpRequest, filters: Query[JobFilter]) -> dict[str, Any]:
    """The jobs I started (of registered kinds), newest first, ``JOB_PAGE_SIZE`` per page."""
    found = selectors.job_page(user=request.user, state=filters.state, kind=filters.kind,
                               page=filters.page)
    return {"items": [_out(request, job) for job in found.jobs], "count": found.count,
            "page": found.page, "pages": found.pages}


@router.get("/jobs/{job_id}/", response=JobDetailOut)
def job_show(request: HttpRequest, job_id: str) -> dict[str, Any]:
    """The job's snapshot and the cursor to subscribe to ``job:<id>`` from, with no gap."""
    job = _own_job(request, job_id)
    detail = selectors.job_detail(job_id=job.pk, user=request.user)
    if detail is None:
        raise ApiError(404, "not_found", "no such job")
    return detail


@router.get("/jobs/{job_id}/attempts/", response=JobAttemptsOut)
def job_attempts(request: HttpRequest, job_id: str) -> dict[str, Any]:
    """Each run of the job, oldest first: start, end, outcome and error (from its log)."""
    found = selectors.job_attempts(job=_own_job(request, job_id))
    return {"attempts": found.attempts, "complete": found.complete}


@router.get("/jobs/{job_id}/children/", response=list[JobOut])
def job_children(request: HttpRequest, job_id: str) -> list[dict[str, Any]]:
    """The job's canvas children (a pipeline's steps and chunks), in the order made."""
    return [_out(request, child) for child in selectors.job_children(job=_own_job(request, job_id))]


@router.post("/jobs/{job_id}/cancel/", response={200: JobOut, 409: ApiErrorOut})
def job_cancel(request: HttpRequest, job_id: str) -> dict[str, Any]:
    """Cancel: a queued job never runs; a running one stops at its next checkpoint."""
    job = _own_job(request, job_id)
    try:
        with transaction.atomic():
            job = services.job_cancel(job=job, actor=request.user)
            _acted(job, request, "cancel")
    except IllegalTransition as exc:
        _acted(job, request, "cancel", refused=str(exc))
        raise ApiError(409, "not_cancellable", str(exc)) from None
    return _out(request, job)


@router.post("/jobs/{job_id}/retry/", response={202: JobOut, 409: ApiErrorOut})
def job_retry(request: HttpRequest, job_id: str) -> Status[dict[str, Any]]:
    """Queue a failed or cancelled job again."""
    job = _own_job(request, job_id)
    try:
        with transaction.atomic():
            job = services.job_retry(job=job, actor=request.user)
            _acted(job, request, "retry")
    except IllegalTransition as exc:
        _acted(job, request, "retry", refused=str(exc))
        raise ApiError(409, "not_retryable", str(exc)) from None
    return Status(202, _out(request, job))
