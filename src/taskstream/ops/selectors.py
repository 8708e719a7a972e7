"""Reads of the ops app: the audit trail, newest first."""

from __future__ import annotations

from dataclasses import dataclass

from taskstream.ops.models import AuditRecord

AUDIT_PAGE_SIZE = 50


def audit_for(*, target_type: str, target_id: str, limit: int = 50) -> list[AuditRecord]:
    """The newest records about one object (a job's page shows them)."""
    return list(AuditRecord.objects.filter(target_type=target_type, target_id=str(target_id))
                [:limit])


@dataclass(frozen=True)
class AuditPage:
    records: list[AuditRecord]
    count: int
    page: int
    pages: int


def audit_page(*, page: int = 1, action: str | None = None,
               outcome: str | None = None) -> AuditPage:
    """One page of the whole trail, optionally of one action or outcome."""
    rows = AuditRecord.objects.all()
    if action:
        rows = rows.filter(action=action)
    if outcome:
        rows = rows.filter(outcome=outcome)
    count = rows.count()
    pages = max(1, -(-count // AUDIT_PAGE_SIZE))
    page = min(max(page, 1), pages)
    start = (page - 1) * AUDIT_PAGE_SIZE
    return AuditPage(records=list(rows[start:start + AUDIT_PAGE_SIZE]), count=count, page=page,
                     pages=pages)
