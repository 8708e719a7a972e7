"""Pipeline kinds with injected faults, imported by a test worker (worker_settings).

``test-flaky``: chunk 2 fails twice with a transient error, then works.
``test-broken``: chunk 2 fails every time until the test drops a "fixed" marker file.
``test-slow``: two milliseconds a row, to catch chunks while they run.
"""

from __future__ import annotations

import time

from taskstream.pipelines import storage as files
from taskstream.pipelines.exceptions import TransientStepError
from taskstream.pipelines.kinds import PipelineKind, register_pipeline_kind


def fixed_marker(pipeline_id: object) -> str:
    return f"{files.ROOT}/test-fixed/{pipeline_id}"


class Flaky(PipelineKind):
    name = "test-flaky"

    def begin_chunk(self, *, pipeline_id: str, index: int, attempt: int) -> None:
        if index == 1 and attempt <= 2:
            raise TransientStepError(f"storage hiccup on attempt {attempt}")


class Broken(PipelineKind):
    name = "test-broken"

    def begin_chunk(self, *, pipeline_id: str, index: int, attempt: int) -> None:
        if index == 1 and not files.pipeline_storage().exists(fixed_marker(pipeline_id)):
            raise TransientStepError("the reference data for this chunk is unreachable")


class Slow(PipelineKind):
    name = "test-slow"

    def check_row(self, values: list[str]) -> str:
        time.sleep(0.002)  # a chunk of 1,000 rows takes two seconds
        return ""


register_pipeline_kind(Flaky())
register_pipeline_kind(Slow())
register_pipeline_kind(Broken())
