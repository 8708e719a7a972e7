"""Writes of the ops app: audit records, and the staff actions that write them.

Each staff action is the jobs app's own service (``job_cancel``, ``job_retry``) plus its
audit record, in one transaction: the record exists exactly when the action happened.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.db import transaction

from taskstream.ops.models import AuditRecord

logger = logging.getLogger("taskstream.ops")

AUDIT_EVENT = "audit.created"
# A bulk retry stops after this many jobs; the page says how many are left.
BULK_LIMIT = 500


def audit_record(*, actor: Any, action: str, target_type: str, target_id: str,
                 source: str, outcome: str = AuditRecord.Outcome.OK,
                 detail: str = "") -> AuditRecord:
    """Write one audit record; staff watching ``ops`` hear of it once it commits."""
    signed_in = actor is not None and getattr(actor, "is_authenticated", False)
    record = AuditRecord.objects.create(
        actor=actor if signed_in else None,
        actor_name=actor.get_username()[:150] if signed_in else "",
        action=action[:64], target_type=target_type[:32], target_id=str(target_id)[:200],
        source=source, outcome=outcome, detail=detail[:10_000])
    logger.info("audit: %s %s %s %s by %s (%s)", action, target_type, target_id, outcome,
                record.actor_name or "system", source)
    transaction.on_commit(partial(_announce, record))
    return record


def audit_payload(record: AuditRecord) -> dict[str, Any]:
    return {"id": record.pk, "actor": record.actor_name, "action": record.action,
            "target_type": record.target_type, "target_id": record.target_id,
            "source": record.source, "outcome": record.outcome, "detail": record.detail,
            "created_at": record.created_at.isoformat()}


def _announce(record: AuditRecord) -> None:
    from taskstream.hub import publish

    try:
        publish("ops", AUDIT_EVENT, audit_payload(record))
    except Exception:  # the record is stored; a live page missing it refetches on reload
        logger.exception("could not publish audit record %s", record.pk)


def ops_job_cancel(*, job: Any, actor: Any) -> Any:
    """Staff cancel a job; raises the jobs app's ``IllegalTransition`` (audited as refused)."""
    return _act(job=job, actor=actor, action="cancel")


def ops_job_retry(*, job: Any, actor: Any) -> Any:
    """Staff queue a failed or cancelled job again (audited, refused or not)."""
    return _act(job=job, actor=actor, action="retry")


def _act(*, job: Any, actor: Any, action: str) -> Any:
    from taskstream.jobs import services
    from taskstream.jobs.exceptions import IllegalTransition

    _require_staff(actor)
    run = services.job_cancel if action == "cancel" else services.job_retry
    try:
        with transaction.atomic():
            job = run(job=job, actor=actor)
            audit_record(actor=actor, action=f"job.{action}", target_type="job",
                         target_id=str(job.pk), source=AuditRecord.Source.OPS)
    except IllegalTransition as exc:
        audit_record(actor=actor, action=f"job.{action}", target_type="job",
                     target_id=str(job.pk), source=AuditRecord.Source.OPS,
                     outcome=AuditRecord.Outcome.REFUSED, detail=str(exc))
        raise
    return job


def ops_retry_failed(*, kind: str, actor: Any) -> int:
    """Staff queue every failed job of ``kind`` again (at most ``BULK_LIMIT``); the count.

    One audit record per job (its page shows it) and one for the whole action.
    """
    from taskstream.jobs import services
    from taskstream.jobs.exceptions import IllegalTransition
    from taskstream.jobs.models import Job
    from taskstream.jobs.states import State

    _require_staff(actor)
    ids = list(Job.objects.filter(kind=kind, state=State.FAILED)
               .order_by("created_at").values_list("pk", flat=True)[:BULK_LIMIT])
    done = 0
    for pk in ids:
        job = Job.objects.get(pk=pk)
        try:
            with transaction.atomic():
                services.job_retry(job=job, actor=actor)
                audit_record(actor=actor, action="job.retry", target_type="job",
                             target_id=str(pk), source=AuditRecord.Source.OPS,
                             detail=f"retry all failed {kind}")
            done += 1
        except IllegalTransition:
            continue  # it moved on its own since the SELECT (retried by someone else)
    audit_record(actor=actor, action="jobs.retry_failed", target_type="kind", target_id=kind,
                 source=AuditRecord.Source.OPS,
                 detail=f"{done} of {len(ids)} failed job(s) queued again")
    return done


def _require_staff(actor: Any) -> None:
    from taskstream.ops.exceptions import StaffOnly

    if not getattr(actor, "is_staff", False) or not getattr(actor, "is_active", False):
        raise StaffOnly("only staff may do this")
