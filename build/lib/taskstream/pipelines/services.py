"""Writes on pipelines: uploads, start, roll-up, the way out (complete, fail, cancel), retry.

The pipeline's own state is its parent ``Job``'s: moved here with conditional UPDATEs like
the jobs services do, and announced with the same ``job.*`` events, so a page that shows
jobs shows pipelines too. Each step and chunk is a child job run by a ``LiveTask``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import unicodedata
import uuid
from functools import partial
from typing import IO, Any

from celery import signature
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Q, Sum
from django.urls import reverse
from django.utils import timezone

from taskstream.conf import conf
from taskstream.jobs import events
from taskstream.jobs.lifecycle import error_fields
from taskstream.jobs.models import Job
from taskstream.jobs.services import job_cancel
from taskstream.jobs.states import ACTIVE, State
from taskstream.outbox import outbox_publish
from taskstream.pipelines import storage as files
from taskstream.pipelines.exceptions import (
    PipelineBusy,
    PipelineError,
    PipelineNotAllowed,
    UploadTooLarge,
)
from taskstream.pipelines.kinds import get_pipeline_kind
from taskstream.pipelines.models import Chunk, Pipeline, Upload
from taskstream.pipelines.signals import report_ready
from taskstream.pipelines.sniff import SAMPLE_BYTES, sniff_csv

logger = logging.getLogger("taskstream.pipelines")

PIPELINE_KIND = "taskstream.pipelines.pipeline"
VALIDATE = "taskstream.pipelines.validate"
SPLIT = "taskstream.pipelines.split"
CHUNK = "taskstream.pipelines.chunk"
AGGREGATE = "taskstream.pipelines.aggregate"
RENDER = "taskstream.pipelines.render"
LAUNCH = "taskstream.pipelines.launch"
STEPS = (VALIDATE, SPLIT, AGGREGATE, RENDER)
STEP_LABELS = {VALIDATE: "validate", SPLIT: "split", CHUNK: "chunk", AGGREGATE: "aggregate",
               RENDER: "render"}
REPORT_READY = "report.ready"
_BLOCK = 64 * 1024


# Uploads -------------------------------------------------------------------------------------

def _display_name(name: str) -> str:
    """The last path part of a client's file name, printable, for display only."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in unicodedata.normalize("NFC", name)
                   if unicodedata.category(c)[0] != "C")
    return name.strip().lstrip(".")[:200]


def upload_create(*, owner: Any, file: IO[bytes],
                  original_name: str = "") -> tuple[Upload, bool]:
    """Store a CSV upload (or find the same content uploaded before); ``(upload, created)``.

    The size limit holds while reading; the type comes from the content, never the name;
    the stored name is generated. Same owner, same bytes: the first upload is returned.
    """
    digest = hashlib.sha256()
    size = 0
    head = b""
    file.seek(0)
    while block := file.read(_BLOCK):
        size += len(block)
        if size > conf.PIPELINE_MAX_UPLOAD_BYTES:
            raise UploadTooLarge(f"the file is larger than {conf.PIPELINE_MAX_UPLOAD_BYTES} "
                                 "bytes")
        if len(head) < SAMPLE_BYTES:
            head += block[: SAMPLE_BYTES - len(head)]
        digest.update(block)
    fmt = sniff_csv(head)
    sha = digest.hexdigest()
    existing = Upload.objects.filter(owner=owner, sha256=sha).first()
    if existing is not None:
        return existing, False
    storage = files.pipeline_storage()
    file.seek(0)
    stored = storage.save(files.upload_name(), File(file))
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction survives a race
            upload = Upload.objects.create(
                owner=owner, original_name=_display_name(original_name), stored_name=stored,
                size=size, sha256=sha, encoding=fmt.encoding, delimiter=fmt.delimiter)
    except IntegrityError:  # the same bytes arrived twice at once
        storage.delete(stored)
        return Upload.objects.get(owner=owner, sha256=sha), False
    return upload, True


# Start ---------------------------------------------------------------------------------------

def _child(parent: Job, kind: str, params: dict[str, Any], queue: str) -> Job:
    return Job.objects.create(owner_id=parent.owner_id, kind=kind, params=params, parent=parent,
                              queue=queue, celery_task_id=str(uuid.uuid4()))


def pipeline_start(*, upload: Upload, owner: Any, kind: str = "summary", force: bool = False,
                   queue: str | None = None) -> tuple[Pipeline, bool]:
    """Process ``upload``; ``(pipeline, started)``.

    Without ``force``, an upload that already has a pipeline which did not fail or get
    cancelled returns that one (the same file twice reuses the first result).
    """
    if upload.owner_id != owner.pk:
        raise PipelineNotAllowed("only the upload's owner may process it")
    if get_pipeline_kind(kind) is None:
        raise PipelineError(f"no pipeline kind {kind!r}")
    if not force:
        previous = (Pipeline.objects.filter(upload=upload, kind=kind)
                    .exclude(job__state__in=[State.FAILED, State.CANCELLED])
                    .select_related("job").first())
        if previous is not None:
            return previous, False
    with transaction.atomic():
        parent = Job.objects.create(owner=owner, kind=PIPELINE_KIND, queue=queue or "",
                                    params={"upload": str(upload.pk), "kind": kind},
                                    celery_task_id=str(uuid.uuid4()),
                                    progress_message="queued")
        pipeline = Pipeline.objects.create(owner=owner, upload=upload, job=parent, kind=kind,
                                           queue=queue or "")
        for step in STEPS:
            _child(parent, step, {"pipeline": str(pipeline.pk)}, queue or "")
        transaction.on_commit(partial(_announce_and_launch, pipeline, events.CREATED))
    return pipeline, True


def _announce_and_launch(pipeline: Pipeline, event: str) -> None:
    pipeline.job.refresh_from_db()
    events.job_publish(pipeline.job, event)
    _send_launch(pipeline)


def _send_launch(pipeline: Pipeline) -> None:
    options: dict[str, Any] = {"queue": pipeline.queue} if pipeline.queue else {}
    try:
        # By name: the task module imports this one (no cycle services <-> tasks).
        signature(LAUNCH, kwargs={"pipeline": str(pipeline.pk)}).apply_async(**options)
    except Exception as exc:
        logger.exception("could not launch pipeline %s", pipeline.pk)
        pipeline_fail(pipeline_id=str(pipeline.pk), exc=exc, where="could not launch")


# Parent state --------------------------------------------------------------------------------

def _parent_move(job_id: Any, sources: list[str], event: str | None, **fields: Any) -> bool:
    now = timezone.now()
    fields.setdefault("updated_at", now)
    if not Job.objects.filter(pk=job_id, state__in=sources).update(**fields):
        return False
    if event is not None:
        job = Job.objects.get(pk=job_id)
        transaction.on_commit(partial(events.job_publish, job, event))
    return True


def pipeline_mark_running(*, pipeline: Pipeline, message: str) -> None:
    """The first step started: the parent job is running (heartbeat kept by its children)."""
    now = timezone.now()
    if not _parent_move(pipeline.job_id, [State.QUEUED], events.STARTED, state=State.RUNNING,
                        started_at=now, heartbeat_at=now, attempt=F("attempt") + 1,
                        progress_message=message):
        pipeline_progress(pipeline=pipeline, message=message)


def parent_cancelled(job_id: Any) -> bool:
    """Whether the pipeline was cancelled. A cancel requested on the parent job alone
    (``job_cancel``, e.g. over /api/jobs/) is carried out here, by the first step to see it."""
    row = Job.objects.filter(pk=job_id).values_list("state", "cancel_requested").first()
    if row is None or row[0] == State.CANCELLED:
        return True
    if row[1] and row[0] in (State.QUEUED, State.RUNNING):
        pipeline = Pipeline.objects.filter(job_id=job_id).first()
        if pipeline is not None:
            _cancel(pipeline)
    return bool(row[1])


_last_rollup: dict[str, float] = {}
_rollup_lock = threading.Lock()


def pipeline_rollup(*, pipeline: Pipeline, force: bool = False) -> None:
    """Roll the chunks' rows into the parent job's progress, at a bounded rate per process."""
    key = str(pipeline.pk)
    now_m = time.monotonic()
    with _rollup_lock:
        if len(_last_rollup) > 1000:  # one entry per pipeline this process worked on
            _last_rollup.clear()
        if not force and now_m - _last_rollup.get(key, 0.0) < max(conf.JOB_PROGRESS_INTERVAL,
                                                                  0.1):
            return
        _last_rollup[key] = now_m
    counts = Chunk.objects.filter(pipeline=pipeline).aggregate(
        done=Sum("done_rows"), chunks=Count("pk"),
        finished=Count("pk", filter=Q(job__state=State.SUCCEEDED)))
    done = counts["done"] or 0
    total = pipeline.total_rows or 0
    message = f"processing: {counts['finished']} of {counts['chunks']} chunks done"
    now = timezone.now()
    if Job.objects.filter(pk=pipeline.job_id, state=State.RUNNING).update(
            progress_current=done, progress_total=total, progress_message=message,
            heartbeat_at=now, updated_at=now):
        events.job_publish(Job.objects.get(pk=pipeline.job_id), events.PROGRESS)


def pipeline_progress(*, pipeline: Pipeline, message: str, current: int = 0,
                      total: int | None = None) -> None:
    now = timezone.now()
    if Job.objects.filter(pk=pipeline.job_id, state=State.RUNNING).update(
            progress_current=current, progress_total=total, progress_message=message,
            heartbeat_at=now, updated_at=now):
        events.job_publish(Job.objects.get(pk=pipeline.job_id), events.PROGRESS)


def report_url(pipeline: Pipeline, ext: str) -> str:
    return reverse(f"taskstream-api:pipeline_report_{ext}", kwargs={"pipeline_id": pipeline.pk})


def pipeline_complete(*, pipeline: Pipeline) -> bool:
    """The report is stored: the parent job succeeds, ``report.ready`` goes out, once."""
    summary = pipeline.summary
    result = {"pipeline": str(pipeline.pk), "rows": summary.get("rows"),
              "bad": summary.get("bad"), "groups": summary.get("groups"),
              "report_csv": report_url(pipeline, "csv"),
              "report_html": report_url(pipeline, "html")}
    total = pipeline.total_rows or 0
    payload = {**result, "job": str(pipeline.job_id),
               "name": pipeline.upload.original_name or "upload.csv"}
    # One transaction: the job's success, the notification and report.ready are stored
    # together, and the event goes out after the commit (or with the relay), never lost.
    with transaction.atomic():
        if not _parent_move(pipeline.job_id, [State.RUNNING], events.SUCCEEDED,
                            state=State.SUCCEEDED, result=result, finished_at=timezone.now(),
                            progress_current=total, progress_total=total, heartbeat_at=None,
                            progress_message="report ready", **error_fields(None)):
            return False
        # The notifications app (if installed) stores the owner's notification from this.
        report_ready.send(sender=Pipeline, pipeline=pipeline, payload=payload)
        # Last: whoever hears report.ready finds the notification (and the files) in place.
        outbox_publish(topic=f"user:{pipeline.owner_id}", event=REPORT_READY, data=payload)
        outbox_publish(topic=f"job:{pipeline.job_id}", event=REPORT_READY, data=payload)
    return True


def _cancel_queued_children(parent_id: Any) -> None:
    for child in Job.objects.filter(parent_id=parent_id, state__in=[State.QUEUED,
                                                                    State.RETRYING]):
        try:
            job_cancel(job=child)
        except Exception:
            logger.info("child %s of %s changed state while cancelling", child.pk, parent_id)


def pipeline_fail(*, pipeline_id: str, exc: BaseException, where: str) -> bool:
    """A step failed for good: the pipeline fails with a clear error, queued steps never run.

    Running chunks finish: their results are kept, so a retry does not redo them.
    """
    pipeline = Pipeline.objects.filter(pk=pipeline_id).first()
    if pipeline is None:
        return False
    fields = error_fields(exc)
    fields["error_message"] = f"{where} failed: {fields['error_message']}"[:10_000]
    # Children first: whoever sees the pipeline failed sees its queued steps cancelled.
    _cancel_queued_children(pipeline.job_id)
    # The message said what it was doing ("aggregating"); now it says it stopped.
    return _parent_move(pipeline.job_id, [State.QUEUED, State.RUNNING], events.FAILED,
                        state=State.FAILED, finished_at=timezone.now(), heartbeat_at=None,
                        progress_message="failed", **fields)


# Cancel and retry ----------------------------------------------------------------------------

def _may_act(pipeline: Pipeline, actor: Any) -> None:
    if actor is not None and not (getattr(actor, "is_staff", False)
                                  or actor.pk == pipeline.owner_id):
        raise PipelineNotAllowed("only the pipeline's owner or staff may do this")


def pipeline_cancel(*, pipeline: Pipeline, actor: Any = None) -> Pipeline:
    """Cancel: queued steps and chunks never run, running ones stop at their next
    checkpoint, and the pipeline's partial files are removed."""
    _may_act(pipeline, actor)
    if not _cancel(pipeline):
        pipeline.job.refresh_from_db()
        from taskstream.jobs.exceptions import IllegalTransition

        raise IllegalTransition(f"a {pipeline.job.state} pipeline cannot be cancelled")
    pipeline.job.refresh_from_db()
    return pipeline


def _cancel(pipeline: Pipeline) -> bool:
    with transaction.atomic():
        moved = _parent_move(pipeline.job_id, [State.QUEUED, State.RUNNING], events.CANCELLED,
                             state=State.CANCELLED, cancel_requested=True,
                             finished_at=timezone.now(), heartbeat_at=None,
                             progress_message="cancelled")
        if not moved:
            return False
        for child in Job.objects.filter(parent_id=pipeline.job_id, state__in=ACTIVE):
            try:
                job_cancel(job=child)
            except Exception:
                logger.info("child %s finished while the pipeline was cancelled", child.pk)
        transaction.on_commit(partial(files.delete_work_files, pipeline.pk, keep_reports=False))
    return True


def _lost_outputs(pipeline: Pipeline) -> list[Any]:
    """Ids of succeeded child jobs whose file is gone: they are not done after all.

    A cancel deletes every part; a disk may lose one. Without a chunk's part the merge and
    the report run again too; without the merged file, the merge does.
    """
    storage = files.pipeline_storage()
    folder = files.work_dir(pipeline.pk)
    try:
        present = {f"{folder}/{name}" for name in storage.listdir(folder)[1]}
    except FileNotFoundError:
        present = set()
    lost = [chunk.job_id for chunk in Chunk.objects.filter(pipeline=pipeline,
                                                           job__state=State.SUCCEEDED)
            if files.part_name(pipeline.pk, chunk.index) not in present]
    redo_merge = bool(lost) or files.aggregate_name(pipeline.pk) not in present
    # A render never succeeds in a pipeline that did not (it completes the pipeline).
    lost += Job.objects.filter(parent_id=pipeline.job_id, state=State.SUCCEEDED,
                               kind__in=[AGGREGATE, RENDER] if redo_merge else [RENDER]
                               ).values_list("pk", flat=True)
    return lost


def pipeline_retry(*, pipeline: Pipeline, actor: Any = None) -> Pipeline:
    """Run a failed or cancelled pipeline again from where it stopped: steps and chunks
    that succeeded are kept, unless their file is gone (a cancel deletes them); the rest
    run again."""
    _may_act(pipeline, actor)
    if Job.objects.filter(parent_id=pipeline.job_id, state__in=[State.RUNNING]).exists():
        raise PipelineBusy("steps of this pipeline are still running; retry when they stop")
    lost = _lost_outputs(pipeline)  # before the transaction: storage calls may be slow
    with transaction.atomic():
        if not _parent_move(pipeline.job_id, [State.FAILED, State.CANCELLED], events.RETRYING,
                            state=State.QUEUED, cancel_requested=False, finished_at=None,
                            result=None, progress_message="queued again", **error_fields(None)):
            pipeline.job.refresh_from_db()
            from taskstream.jobs.exceptions import IllegalTransition

            raise IllegalTransition(f"a {pipeline.job.state} pipeline cannot be retried")
        for child in Job.objects.filter(Q(parent_id=pipeline.job_id),
                                        ~Q(state=State.SUCCEEDED) | Q(pk__in=lost)):
            Job.objects.filter(pk=child.pk, state=child.state).update(
                state=State.QUEUED, celery_task_id=str(uuid.uuid4()), run_token="",
                cancel_requested=False, finished_at=None, eta=None, heartbeat_at=None,
                progress_current=0, updated_at=timezone.now(), **error_fields(None))
        Chunk.objects.filter(pipeline=pipeline).exclude(job__state=State.SUCCEEDED).update(
            done_rows=0)
        transaction.on_commit(partial(_send_launch, pipeline))
    pipeline.job.refresh_from_db()
    return pipeline


def pipeline_purge_uploads(*, before: Any) -> int:
    """Delete uploads older than ``before`` with their pipelines and files; returns count."""
    storage = files.pipeline_storage()
    count = 0
    for upload in Upload.objects.filter(created_at__lt=before).exclude(
            pipelines__job__state__in=ACTIVE):
        for pipeline_id in upload.pipelines.values_list("pk", flat=True):
            files.delete_work_files(pipeline_id, keep_reports=False)
        files.delete_quietly(storage, [upload.stored_name])
        Job.objects.filter(pipeline__upload=upload).delete()
        upload.delete()
        count += 1
    return count

