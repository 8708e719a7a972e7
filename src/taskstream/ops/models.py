"""The audit trail: one row per action someone took on something (a job)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class AuditRecord(models.Model):
    """Who did what to which object, when, from where, and how it went. Never updated."""

    class Outcome(models.TextChoices):
        OK = "ok"
        REFUSED = "refused"  # the action was not possible (a finished job cancelled)
        ERROR = "error"  # it failed part way (the broker refused the retry's message)

    class Source(models.TextChoices):
        API = "api"  # the owner, through /api/jobs/
        OPS = "ops"  # staff, from the ops pages or /api/ops/

    # SET_NULL and the name kept beside it: the trail outlives the account.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    actor_name = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=64)  # "job.cancel", "job.retry", "jobs.retry_failed"
    # The object acted on, by type and id (a kind name for a bulk action), not a foreign key:
    # the record stays when the job is purged.
    target_type = models.CharField(max_length=32)
    target_id = models.CharField(max_length=200)
    source = models.CharField(max_length=8, choices=Source.choices)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    detail = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id", "-created_at"],
                                name="taskstream_audit_target_idx")]

    def __str__(self) -> str:
        return f"{self.actor_name or 'system'} {self.action} {self.target_id} ({self.outcome})"
