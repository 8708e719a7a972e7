"""``/api/ops/`` behind the workers, queues and jobs pages (staff only, CSRF on writes).

Signed out is 401 (the API root's session auth); signed in without staff is 403 ``forbidden``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from taskstream.api import ApiError, ApiErrorOut
from taskstream.ops.api import _staff
from taskstream.ops.exceptions import StaffOnly

router = Router(tags=["ops"])

# A queue name as RabbitMQ allows it (255 bytes), without control characters.
QUEUE_NAME = r"^[^\x00-\x1f\x7f]{1,255}$"


class QueueOut(Schema):
    name: str
    depth: int
    oldest_age: float | None = Field(description="seconds since the oldest waiting message "
                                     "was sent; null when empty or not known")


class PurgeOut(Schema):
    queue: str
    messages: int
    cancelled: int
    left: int


class ActiveTaskOut(Schema):
    task_id: str
    name: str
    started_at: datetime | None
    job_id: uuid.UUID | None


class WorkerOut(Schema):
    hostname: str
    online: bool
    answered: bool = Field(description="it answered Celery's inspect just now")
    heartbeat_at: datetime | None = Field(description="its last heartbeat the monitor heard")
    concurrency: int | None
    processed: int | None
    offline_reason: str = Field(description='"", "shutdown" or "lost"')
    active: list[ActiveTaskOut]


class JobSearchIn(Schema):
    q: str = Field("", max_length=200)
    kind: str = Field("", max_length=200)
    state: str = Field("", pattern=r"^(|queued|running|retrying|succeeded|failed|cancelled)$")
    owner: str = Field("", max_length=150)
    since: datetime | None = None
    until: datetime | None = None
    page: int = Field(1, ge=1, le=100_000)


class OpsJobRowOut(Schema):
    id: uuid.UUID
    kind: str
    state: str
    owner: str
    attempt: int
    queue: str
    created_at: datetime
    finished_at: datetime | None
    error_type: str


class JobSearchOut(Schema):
    items: list[OpsJobRowOut]
    count: int
    page: int
    pages: int


def _broker_down() -> ApiError:
    return ApiError(503, "broker_unavailable", "the broker did not answer; try again")


@router.get("/ops/queues/", response={200: list[QueueOut], 403: ApiErrorOut,
                                      503: ApiErrorOut})
def queues(request: HttpRequest) -> Any:
    """Each known queue's depth and the age of its oldest waiting message, from the broker."""
    from taskstream.ops.broker import queue_infos

    _staff(request)
    found = queue_infos()
    if found is None:
        raise _broker_down()
    return found


@router.post("/ops/queues/{name}/purge/",
             response={200: PurgeOut, 403: ApiErrorOut, 422: ApiErrorOut, 503: ApiErrorOut})
def queue_purge(request: HttpRequest, name: str) -> Any:
    """Delete every message waiting in the queue and cancel the jobs queued there (audited)."""
    import re

    from taskstream.ops.queue_actions import ops_queue_purge

    _staff(request)
    if not re.fullmatch(QUEUE_NAME, name):
        raise ApiError(422, "invalid", "not a queue name")
    try:
        return ops_queue_purge(queue=name, actor=request.user)
    except StaffOnly as exc:
        raise ApiError(403, "forbidden", str(exc)) from None
    except Exception:
        raise _broker_down() from None


@router.get("/ops/workers/", response={200: list[WorkerOut], 403: ApiErrorOut,
                                       503: ApiErrorOut})
def workers(request: HttpRequest) -> Any:
    """Every worker the monitor knows or that answers Celery's inspect now, with the tasks
    each runs (503 when the broker cannot be asked and the monitor knows no worker)."""
    from taskstream.ops.worker_status import worker_rows

    _staff(request)
    rows, reached = worker_rows()
    if not reached and not rows:
        raise _broker_down()
    return rows


@router.get("/ops/jobs/", response={200: JobSearchOut, 403: ApiErrorOut})
def jobs(request: HttpRequest, filters: Query[JobSearchIn]) -> dict[str, Any]:
    """Every user's jobs, newest first, 50 a page: search and filters as on the jobs page."""
    from taskstream.ops.job_search import JobFilters, job_search

    _staff(request)
    found = job_search(filters=JobFilters(
        q=filters.q, kind=filters.kind, state=filters.state, owner=filters.owner,
        since=filters.since, until=filters.until), page=filters.page)
    return {"items": [{"id": j.pk, "kind": j.kind, "state": j.state,
                       "owner": j.owner.get_username(), "attempt": j.attempt,
                       "queue": j.queue, "created_at": j.created_at,
                       "finished_at": j.finished_at, "error_type": j.error_type}
                      for j in found.jobs],
            "count": found.count, "page": found.page, "pages": found.pages}
