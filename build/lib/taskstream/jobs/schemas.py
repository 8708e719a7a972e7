"""Request and response schemas of the jobs API (they document the OpenAPI schema)."""

from __future__ import annotations

from typing import Any

from ninja import Field, Schema

from taskstream.jobs.states import State


class JobStartIn(Schema):
    kind: str = Field(..., max_length=200, description="A registered job kind.")
    params: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str | None = Field(
        None, min_length=1, max_length=200,
        description="Starting twice with the same key returns the first job.")


class JobFilter(Schema):
    state: State | None = None
    kind: str | None = Field(None, max_length=200)
    page: int = Field(1, ge=1, le=100_000)


class ProgressOut(Schema):
    current: int
    total: int | None
    percent: float | None
    message: str


class ErrorOut(Schema):
    type: str
    message: str
    traceback: str | None = Field(None, description="Staff only.")


class JobOut(Schema):
    id: str
    topic: str
    kind: str
    state: str
    progress: ProgressOut
    attempt: int
    result: Any = None
    error: ErrorOut | None
    cancel_requested: bool
    parent: str | None
    eta: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    updated_at: str | None


class JobDetailOut(JobOut):
    cursor: str | None = Field(..., description="Subscribe to `topic` since this cursor; "
                               "null while the hub's Redis does not answer (subscribe "
                               "without `since`).")


class JobPageOut(Schema):
    items: list[JobOut]
    count: int
    page: int
    pages: int


class JobKindOut(Schema):
    name: str
    label: str
    params_schema: dict[str, Any]


class AttemptErrorOut(Schema):
    type: str
    message: str


class AttemptOut(Schema):
    number: int | None = Field(..., description="The job's `attempt` during this run.")
    started_at: str
    finished_at: str | None
    outcome: str = Field(..., description="running, retrying (failed, retried), succeeded, "
                                          "failed, cancelled, or lost (taken over).")
    error: AttemptErrorOut | None


class JobAttemptsOut(Schema):
    attempts: list[AttemptOut]
    complete: bool = Field(..., description="False when older runs left the job's log "
                                            "(`LOG_MAX_AGE`, `LOG_MAXLEN`).")
