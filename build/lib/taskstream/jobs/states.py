"""The job state machine: which transitions exist. Pure data, no database.

``queued → running → (retrying → running)* → succeeded | failed | cancelled``; a failed
or cancelled job may be queued again by ``job_retry``. The services turn each transition
into a conditional UPDATE (``WHERE state IN sources``), so two racing writers cannot both
win: a job that ran twice still completes once.
"""

from __future__ import annotations

from django.db import models

from taskstream.jobs.exceptions import IllegalTransition


class State(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL = frozenset({State.SUCCEEDED, State.FAILED, State.CANCELLED})
ACTIVE = frozenset({State.QUEUED, State.RUNNING, State.RETRYING})

# target -> states it may be entered from
SOURCES: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.FAILED, State.CANCELLED}),
    # running -> running: a redelivered message (worker lost) takes the job over.
    State.RUNNING: frozenset({State.QUEUED, State.RETRYING, State.RUNNING}),
    State.RETRYING: frozenset({State.RUNNING}),
    State.SUCCEEDED: frozenset({State.RUNNING}),
    State.FAILED: frozenset({State.RUNNING, State.RETRYING}),
    State.CANCELLED: frozenset({State.QUEUED, State.RUNNING, State.RETRYING}),
}


def sources(target: State) -> frozenset[State]:
    """States from which ``target`` may be entered."""
    return SOURCES[target]


def can_move(current: str, target: State) -> bool:
    return current in SOURCES[target]


def check_move(current: str, target: State) -> None:
    """Raise :class:`IllegalTransition` unless ``current → target`` is allowed."""
    if not can_move(current, target):
        raise IllegalTransition(f"a {current} job cannot become {target}")
