"""Staff's "purge queue": the broker's messages deleted, the jobs that waited there cancelled.

Deleting the messages alone would not stop those jobs: the reaper sends a queued job that no
worker claimed again (``JOB_QUEUED_TIMEOUT``). So the purge also cancels the jobs that were
queued in that queue when it ran (at most ``BULK_LIMIT`` a call; purging again cancels the
next ones). A job whose message was sent just after the purge and is cancelled anyway is
harmless: its claim refuses a cancelled job. Audited as ``queue.purge``, refused or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taskstream.ops.models import AuditRecord
from taskstream.ops.services import BULK_LIMIT, _require_staff, audit_record


@dataclass(frozen=True)
class PurgeResult:
    queue: str
    messages: int  # deleted from the broker
    cancelled: int  # jobs that waited there, now cancelled
    left: int  # jobs still queued there past BULK_LIMIT: purge again


def routed_queue(kind: str) -> str:
    """The queue a job of ``kind`` started without ``queue=`` goes to (the task's route)."""
    from celery import current_app

    task = current_app.tasks.get(kind)
    own = getattr(task, "queue", None)
    if own:
        return str(own)
    return str(current_app.amqp.router.route({}, kind)["queue"].name)


def _waiting_jobs(queue: str, *, before: Any) -> Any:
    from django.db.models import Q

    from taskstream.jobs.models import Job
    from taskstream.jobs.states import State

    queued = Job.objects.filter(state=State.QUEUED, updated_at__lte=before)
    kinds = [k for k in queued.filter(queue="").order_by().values_list("kind", flat=True)
             .distinct()[:1000] if routed_queue(k) == queue]
    return queued.filter(Q(queue=queue) | Q(queue="", kind__in=kinds)).order_by("created_at")


def ops_queue_purge(*, queue: str, actor: Any) -> PurgeResult:
    """Staff delete every message waiting in ``queue`` and cancel the jobs queued there."""
    from django.db import transaction
    from django.utils import timezone

    from taskstream.jobs.exceptions import IllegalTransition
    from taskstream.jobs.services import job_cancel
    from taskstream.ops.broker import queue_purge

    _require_staff(actor)
    started = timezone.now()
    try:
        messages = queue_purge(queue)
    except Exception as exc:
        audit_record(actor=actor, action="queue.purge", target_type="queue", target_id=queue,
                     source=AuditRecord.Source.OPS, outcome=AuditRecord.Outcome.ERROR,
                     detail=f"the broker refused: {exc}")
        raise
    waiting = _waiting_jobs(queue, before=started)
    ids = list(waiting.values_list("pk", flat=True)[:BULK_LIMIT])
    cancelled = 0
    from taskstream.jobs.models import Job

    for job in Job.objects.filter(pk__in=ids):
        try:
            with transaction.atomic():
                job_cancel(job=job, actor=actor)
                audit_record(actor=actor, action="job.cancel", target_type="job",
                             target_id=str(job.pk), source=AuditRecord.Source.OPS,
                             detail=f"queue {queue} purged")
            cancelled += 1
        except IllegalTransition:
            continue  # a worker claimed it since the SELECT: it runs
    left = waiting.count()
    detail = f"{messages} message(s) deleted; {cancelled} waiting job(s) cancelled"
    if left:
        detail += f"; {left} more still queued (purge again)"
    audit_record(actor=actor, action="queue.purge", target_type="queue", target_id=queue,
                 source=AuditRecord.Source.OPS, detail=detail)
    return PurgeResult(queue=queue, messages=messages, cancelled=cancelled, left=left)
