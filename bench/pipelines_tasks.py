"""Tasks of the pipelines bench: the demo's app, plus the same work as one plain task."""

from __future__ import annotations

import time
from typing import Any

from celery import shared_task

from example.celery import app

__all__ = ["app"]


@shared_task(name="bench.pipeline_plain", ignore_result=False)
def pipeline_plain(*, stored_name: str, encoding: str, delimiter: str,
                   columns: list[dict[str, Any]], header_end: int) -> dict[str, Any]:
    """One pass over the whole upload with the pipeline's own summary code: no chunks,
    no jobs, no progress, no canvas. The baseline of the canvas overhead."""
    from taskstream.pipelines import report, summary
    from taskstream.pipelines import storage as files
    from taskstream.pipelines.csvscan import read_records

    began = time.perf_counter()
    part = summary.new_part()
    group = summary.group_column(columns)
    numeric = summary.numeric_indices(columns)
    with files.pipeline_storage().open(stored_name, "rb") as f:
        for record in read_records(f, encoding=encoding, delimiter=delimiter, start=header_end,
                                   first_line=2):
            summary.add_record(part, record, columns=columns, group_index=group,
                               numeric=numeric)
    report.render_csv(part, columns)
    return {"rows": part["rows"], "seconds": time.perf_counter() - began}
