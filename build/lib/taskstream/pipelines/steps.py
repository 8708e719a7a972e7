"""The bodies of the pipeline's steps; tasks.py wraps each in a retrying LiveTask."""

from __future__ import annotations

import json
import logging
import time
from itertools import islice
from typing import IO, Any

from django.core.files.base import ContentFile
from django.db import transaction

from taskstream.conf import conf
from taskstream.jobs.exceptions import JobCancelled
from taskstream.jobs.models import Job
from taskstream.pipelines import report, services, summary
from taskstream.pipelines import storage as files
from taskstream.pipelines.columns import decide_columns, text_column_notes
from taskstream.pipelines.csvscan import read_records, scan_chunks
from taskstream.pipelines.exceptions import InvalidCsv, MissingFile, TransientStepError
from taskstream.pipelines.kinds import PipelineKind, get_pipeline_kind
from taskstream.pipelines.models import Chunk, Pipeline, Upload

logger = logging.getLogger("taskstream.pipelines")

SAMPLE_ROWS = 1000
# Rows between checkpoints (each is a clock read; the database is asked at most every
# JOB_PROGRESS_INTERVAL).
PROGRESS_EVERY = 100
# Seconds between writes of a chunk's row count into the parent's roll-up.
ROLLUP_INTERVAL = 0.25


def _pipeline(pipeline_id: str) -> Pipeline:
    pipeline = Pipeline.objects.select_related("upload", "job").get(pk=pipeline_id)
    if services.parent_cancelled(pipeline.job_id):
        raise JobCancelled(str(pipeline.job_id))
    return pipeline


def _kind(pipeline: Pipeline) -> PipelineKind:
    kind = get_pipeline_kind(pipeline.kind)
    if kind is None:
        raise InvalidCsv(f"no pipeline kind {pipeline.kind!r} is registered in this worker")
    return kind


def _open(name: str, gone: str) -> IO[bytes]:
    """Open a stored file; a missing one is ``MissingFile(gone)``: the message the user
    sees, without the server's path (which goes to the log)."""
    try:
        return files.pipeline_storage().open(name, "rb")
    except FileNotFoundError as exc:
        logger.warning("%s: %s", gone, exc)
        raise MissingFile(gone) from None


def _open_upload(upload: Upload) -> IO[bytes]:
    return _open(upload.stored_name, "the uploaded file is gone; upload it again")


def _save(name: str, content: bytes) -> str:
    storage = files.pipeline_storage()
    if storage.exists(name):
        storage.delete(name)  # a retried step replaces its own file
    return storage.save(name, ContentFile(content))


def validate(task: Any, *, pipeline_id: str) -> dict[str, Any]:
    """The header is usable; which columns are numbers (from a sample of rows, see
    ``columns``)."""
    pipeline = _pipeline(pipeline_id)
    services.pipeline_mark_running(pipeline=pipeline, message="validating")
    upload = pipeline.upload
    with _open_upload(upload) as f:
        records = read_records(f, encoding=upload.encoding, delimiter=upload.delimiter)
        header = next(records, None)
        if header is None or header.values is None:
            raise InvalidCsv("the file has no readable header row")
        names = [(v.strip() or f"column {i + 1}") for i, v in enumerate(header.values)]
        if len(names) > conf.PIPELINE_MAX_COLUMNS:
            raise InvalidCsv(f"{len(names)} columns; at most {conf.PIPELINE_MAX_COLUMNS}")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidCsv(f"duplicate column names: {', '.join(duplicates)[:200]}")
        pipeline.columns = decide_columns(names, islice(records, SAMPLE_ROWS))
    pipeline.header_end = header.end
    pipeline.header_lines = header.next_line - 1
    pipeline.save(update_fields=["columns", "header_end", "header_lines"])
    return {"columns": pipeline.columns}


def split(task: Any, *, pipeline_id: str) -> dict[str, Any]:
    """Cut the rows into chunks of PIPELINE_CHUNK_ROWS records, then send the chord."""
    from taskstream.pipelines.canvas import remaining_after_split

    pipeline = _pipeline(pipeline_id)
    services.pipeline_progress(pipeline=pipeline, message="splitting")
    upload = pipeline.upload
    size = conf.PIPELINE_CHUNK_ROWS
    bounds: list[tuple[int, int, int, int]] = []
    with _open_upload(upload) as f:
        for span in scan_chunks(f, start=pipeline.header_end,
                                first_line=pipeline.header_lines + 1, rows_per_chunk=size):
            bounds.append((span.start, span.end, span.first_line, span.rows))
            task.checkpoint()
    with transaction.atomic():
        if not Chunk.objects.filter(pipeline=pipeline).exists():  # a retry keeps its chunks
            for index, (begin, end, line, count) in enumerate(bounds):
                job = services._child(pipeline.job, services.CHUNK,
                                      {"pipeline": str(pipeline.pk), "index": index},
                                      pipeline.queue)
                Chunk.objects.create(pipeline=pipeline, index=index, start=begin, end=end,
                                     first_line=line, rows=count, job=job)
        pipeline.total_rows = sum(b[3] for b in bounds)
        pipeline.save(update_fields=["total_rows"])
    if services.parent_cancelled(pipeline.job_id):
        raise JobCancelled(str(pipeline.job_id))
    services.pipeline_progress(pipeline=pipeline, message=f"processing {len(bounds)} chunks",
                               total=pipeline.total_rows)
    rest = remaining_after_split(pipeline)
    if rest is not None:
        rest.apply_async()
    return {"chunks": len(bounds), "rows": pipeline.total_rows}


def process_chunk(task: Any, *, pipeline_id: str, index: int) -> dict[str, Any]:
    """Summarise one chunk's rows into its part file; bad rows are kept with their lines."""
    pipeline = _pipeline(pipeline_id)
    chunk = Chunk.objects.get(pipeline=pipeline, index=index)
    kind = _kind(pipeline)
    job: Job | None = task.job
    kind.begin_chunk(pipeline_id=pipeline_id, index=index, attempt=job.attempt if job else 1)
    upload, columns = pipeline.upload, pipeline.columns
    group_index = summary.group_column(columns)
    numeric = summary.numeric_indices(columns)
    check_row = kind.check_row if type(kind).check_row is not PipelineKind.check_row else None
    part = summary.new_part()
    done = 0
    last = time.monotonic()
    with _open_upload(upload) as f:
        for record in read_records(f, encoding=upload.encoding, delimiter=upload.delimiter,
                                   start=chunk.start, end=chunk.end, first_line=chunk.first_line):
            extra = check_row(record.values) if check_row and record.values is not None else ""
            summary.add_record(part, record, columns=columns, group_index=group_index,
                               extra_error=extra, numeric=numeric)
            done += 1
            if done % PROGRESS_EVERY:
                continue
            task.checkpoint()  # looks at the database at a bounded rate itself
            # Every write here is a database round trip: a few per second, not per row.
            if time.monotonic() - last >= ROLLUP_INTERVAL:
                last = time.monotonic()
                task.progress(done, chunk.rows, f"chunk {index + 1}")
                Chunk.objects.filter(pk=chunk.pk).update(done_rows=done)
                services.pipeline_rollup(pipeline=pipeline)
    task.checkpoint()
    name = _save(files.part_name(pipeline.pk, index), json.dumps(part).encode())
    if services.parent_cancelled(pipeline.job_id):  # cancelled while we wrote: leave nothing
        files.delete_quietly(files.pipeline_storage(), [name])
        raise JobCancelled(str(pipeline.job_id))
    task.progress(chunk.rows, chunk.rows, f"chunk {index + 1}")
    Chunk.objects.filter(pk=chunk.pk).update(done_rows=chunk.rows)
    services.pipeline_rollup(pipeline=pipeline, force=True)
    return {"rows": part["rows"], "bad": part["bad"]}


def aggregate(task: Any, *, pipeline_id: str) -> dict[str, Any]:
    """Merge the chunks' parts into the file's summary."""
    pipeline = _pipeline(pipeline_id)
    services.pipeline_progress(pipeline=pipeline, message="aggregating",
                               current=pipeline.total_rows or 0, total=pipeline.total_rows)
    # A chord sent twice (a split redelivered after a lost worker) may call this early.
    pending = Chunk.objects.filter(pipeline=pipeline).exclude(job__state="succeeded").count()
    if pending:
        raise TransientStepError(f"{pending} chunk(s) not finished yet")
    total = summary.new_part()
    for index in Chunk.objects.filter(pipeline=pipeline).values_list("index", flat=True):
        task.checkpoint()
        # Gone (deleted by a cancel, lost with a disk): a retry of the pipeline redoes it.
        with _open(files.part_name(pipeline.pk, index),
                   f"the result of chunk {index + 1} is gone; retry the pipeline to redo it"
                   ) as f:
            summary.merge(total, json.load(f))
    _save(files.aggregate_name(pipeline.pk), json.dumps(total).encode())
    return {"rows": total["rows"], "bad": total["bad"], "groups": len(total["groups"])}


def render(task: Any, *, pipeline_id: str) -> dict[str, Any]:
    """Write the CSV and HTML reports, then finish the pipeline and tell its owner."""
    pipeline = _pipeline(pipeline_id)
    services.pipeline_progress(pipeline=pipeline, message="rendering the report",
                               current=pipeline.total_rows or 0, total=pipeline.total_rows)
    with _open(files.aggregate_name(pipeline.pk),
               "the merged result is gone; retry the pipeline to merge again") as f:
        total = json.load(f)
    title = pipeline.upload.original_name or "upload.csv"
    csv_name = _save(files.report_name(pipeline.pk, "csv"),
                     report.render_csv(total, pipeline.columns))
    task.checkpoint()
    html_name = _save(files.report_name(pipeline.pk, "html"),
                      report.render_html(summary=total, columns=pipeline.columns, title=title,
                                         total_rows=pipeline.total_rows or 0))
    pipeline.report_csv, pipeline.report_html = csv_name, html_name
    top = report.group_rows(total)[: report.TOP_GROUPS]
    pipeline.summary = {"rows": total["rows"], "bad": total["bad"],
                        "groups": len(total["groups"]), "bad_rows": total["bad_rows"][:20],
                        "notes": text_column_notes(pipeline.columns),
                        "top": [[key, slots[0]] for key, slots in top]}
    pipeline.save(update_fields=["report_csv", "report_html", "summary"])
    if services.parent_cancelled(pipeline.job_id):
        files.delete_work_files(pipeline.pk, keep_reports=False)
        raise JobCancelled(str(pipeline.job_id))
    files.delete_work_files(pipeline.pk, keep_reports=True)
    services.pipeline_complete(pipeline=pipeline)
    return {"report_csv": csv_name, "report_html": html_name}
