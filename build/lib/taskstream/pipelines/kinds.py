"""Pipeline kinds: hooks a project overrides to shape what a pipeline does per chunk.

::

    from taskstream.pipelines.kinds import PipelineKind, register_pipeline_kind

    class Priced(PipelineKind):
        name = "priced"

        def begin_chunk(self, *, pipeline_id, index, attempt):
            self.prices = load_prices()   # raising TransientStepError retries the chunk

        def check_row(self, values):
            return "" if values[0] in self.prices else "unknown product"

    register_pipeline_kind(Priced())

The kind must be registered in the worker (a module Celery imports) and in the web process.
"""

from __future__ import annotations


class PipelineKind:
    """The default kind, ``summary``: every row counts, no per-chunk set-up."""

    name = "summary"
    label = "Summary report"

    def begin_chunk(self, *, pipeline_id: str, index: int, attempt: int) -> None:
        """Called before a chunk's rows, once per attempt (``attempt`` counts from 1)."""

    def check_row(self, values: list[str]) -> str:
        """An error message for a row the kind refuses ("" accepts it)."""
        return ""


_kinds: dict[str, PipelineKind] = {}


def register_pipeline_kind(kind: PipelineKind) -> PipelineKind:
    _kinds[kind.name] = kind
    return kind


def get_pipeline_kind(name: str) -> PipelineKind | None:
    return _kinds.get(name)


def pipeline_kinds() -> dict[str, PipelineKind]:
    return dict(_kinds)


register_pipeline_kind(PipelineKind())
