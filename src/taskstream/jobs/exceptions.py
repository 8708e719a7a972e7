"""Failures of the jobs app, one class each."""

from __future__ import annotations

from taskstream.exceptions import TaskstreamError


class JobCancelled(Exception):
    """Raised by ``LiveTask.checkpoint()`` once cancelling the running job was requested."""


class JobSuperseded(Exception):
    """This run lost its job to a newer run (redelivery or the reaper); it stops quietly."""


class JobError(TaskstreamError):
    """Base class of errors the job services raise; ``code`` is the API error code."""

    code = "job_error"


class IllegalTransition(JobError):
    """A job cannot move from its current state to the requested one."""

    code = "illegal_transition"


class UnknownJobKind(JobError):
    """No LiveTask (or HTTP-startable job kind) of that name is registered."""

    code = "unknown_kind"


class InvalidJobParams(JobError):
    """The params of a job did not validate against its kind's schema."""

    code = "invalid_params"

    def __init__(self, message: str, errors: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class IdempotencyConflict(JobError):
    """The idempotency key was already used by this owner for a different kind or params."""

    code = "idempotency_conflict"


class TooManyJobs(JobError):
    """The owner already has as many unfinished jobs as they may (``max_active``)."""

    code = "too_many_jobs"


class OwnerBusy(JobError):
    """A claim found the owner already running as many jobs as they may: the run waits
    (``JOB_MAX_RUNNING_PER_USER``); raised by the claim, never shown to a client."""

    code = "owner_busy"


class JobNotAllowed(JobError):
    """The actor may not act on this job (not its owner, not staff)."""

    code = "forbidden"
