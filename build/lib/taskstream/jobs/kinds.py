"""Job kinds that may be started over HTTP, each with a pydantic schema for its params.

Any LiveTask can be started from Python with ``job_start``; only the kinds registered
here can be started by a browser, with validated params::

    from pydantic import BaseModel, Field
    from taskstream.jobs.kinds import register_job_kind

    class ExportParams(BaseModel):
        rows: int = Field(ge=1, le=100_000)

    register_job_kind("reports.export", params=ExportParams, label="Export rows")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic import ValidationError as PydanticValidationError

from taskstream.jobs.exceptions import InvalidJobParams, UnknownJobKind


class NoParams(BaseModel):
    """Params of a kind that takes none."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class JobKind:
    name: str  # the Celery task name of the LiveTask
    params: type[BaseModel]
    label: str
    staff_only: bool = False


_kinds: dict[str, JobKind] = {}


def register_job_kind(name: str, *, params: type[BaseModel] = NoParams, label: str = "",
                      staff_only: bool = False) -> JobKind:
    """Allow ``POST /api/jobs/`` to start the LiveTask ``name`` with ``params``."""
    kind = JobKind(name=name, params=params, label=label or name, staff_only=staff_only)
    _kinds[name] = kind
    return kind


def unregister_job_kind(name: str) -> None:
    _kinds.pop(name, None)


_discovered = False


def discover_tasks() -> None:
    """Import the task modules Celery would (each app's ``tasks``, ``CELERY_IMPORTS``).

    A web process never runs a worker's start-up, yet must know the LiveTasks and the
    kinds they register before it can start one.
    """
    global _discovered
    if not _discovered:
        from celery import current_app

        current_app.loader.import_default_modules()
        _discovered = True


def registered_kinds() -> dict[str, JobKind]:
    discover_tasks()
    return dict(_kinds)


def get_kind(name: str) -> JobKind | None:
    discover_tasks()
    return _kinds.get(name)


def http_kind(name: str, user: Any) -> JobKind:
    """The kind a user may start over HTTP, or :class:`UnknownJobKind`."""
    kind = get_kind(name)
    if kind is None or (kind.staff_only and not getattr(user, "is_staff", False)):
        raise UnknownJobKind(f"no job kind {name!r} may be started over HTTP")
    return kind


def validate_params(kind: JobKind, params: Any) -> dict[str, Any]:
    """Validated params as JSON data, or :class:`InvalidJobParams` with pydantic's errors."""
    try:
        model = kind.params.model_validate(params if params is not None else {})
    except PydanticValidationError as exc:
        errors: list[dict[str, object]] = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)]
        raise InvalidJobParams(f"params of {kind.name!r} did not validate", errors) from None
    return model.model_dump(mode="json")
