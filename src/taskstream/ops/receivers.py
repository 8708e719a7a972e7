"""What the ops app hears from the others: the jobs API's cancel and retry (audited), and
every job state change (counted for ``/metrics``)."""

from __future__ import annotations

from typing import Any

from taskstream.ops.models import AuditRecord


def _job_action(sender: Any, *, job: Any, actor: Any, action: str, outcome: str,
                detail: str = "", **kwargs: Any) -> None:
    from taskstream.ops.services import audit_record

    audit_record(actor=actor, action=f"job.{action}", target_type="job",
                 target_id=str(job.pk), source=AuditRecord.Source.API, outcome=outcome,
                 detail=detail)


def connect() -> None:
    from taskstream.jobs.signals import job_action, job_moved
    from taskstream.ops import metrics, pulse

    job_action.connect(_job_action, weak=False, dispatch_uid="taskstream.ops.audit")
    job_moved.connect(metrics.job_moved, weak=False, dispatch_uid="taskstream.ops.metrics")
    job_moved.connect(pulse.job_moved, weak=False, dispatch_uid="taskstream.ops.pulse")
