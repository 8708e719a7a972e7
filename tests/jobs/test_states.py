"""The job state machine, as pure data."""

from __future__ import annotations

import itertools

import pytest

from taskstream.jobs.exceptions import IllegalTransition
from taskstream.jobs.states import ACTIVE, TERMINAL, State, can_move, check_move


def test_happy_path_and_retries_are_allowed():
    path = [State.QUEUED, State.RUNNING, State.RETRYING, State.RUNNING, State.SUCCEEDED]
    for current, target in itertools.pairwise(path):
        check_move(current, target)


@pytest.mark.parametrize("terminal", sorted(TERMINAL))
def test_a_finished_job_never_runs_or_finishes_again(terminal):
    for target in (State.RUNNING, State.RETRYING, State.SUCCEEDED, State.FAILED):
        assert not can_move(terminal, target)
        with pytest.raises(IllegalTransition):
            check_move(terminal, target)


def test_only_failed_or_cancelled_jobs_are_queued_again():
    assert {s for s in State if can_move(s, State.QUEUED)} == {State.FAILED, State.CANCELLED}


def test_every_active_job_can_be_cancelled_and_success_needs_a_run():
    assert all(can_move(s, State.CANCELLED) for s in ACTIVE)
    assert {s for s in State if can_move(s, State.SUCCEEDED)} == {State.RUNNING}
