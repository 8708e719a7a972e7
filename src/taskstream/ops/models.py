"""The audit trail (one row per action someone took on a job), and the events monitor's
history: workers, task events, per-minute counts and alerts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q


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


# -- the events monitor's durable, bounded history (written only by the monitor) -----------

class WorkerRecord(models.Model):
    """One Celery worker the monitor has heard of: online or not, its last heartbeat.

    ``online`` is what the monitor last concluded; a reader also checks the heartbeat's
    age (:meth:`is_online`), so a row stays right while no monitor runs.
    """

    class Offline(models.TextChoices):
        SHUTDOWN = "shutdown"  # it said goodbye (worker-offline)
        LOST = "lost"  # its heartbeats stopped (killed, host or network gone)

    hostname = models.CharField(max_length=255, unique=True)
    online = models.BooleanField(default=False)
    first_seen_at = models.DateTimeField()
    online_at = models.DateTimeField(null=True, blank=True)  # its latest coming online
    offline_at = models.DateTimeField(null=True, blank=True)
    offline_reason = models.CharField(max_length=8, choices=Offline.choices, blank=True,
                                      default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Seconds between heartbeats, as the worker announces them (``freq``); Celery counts a
    # worker gone two intervals after its last one.
    heartbeat_interval = models.FloatField(default=2.0)
    concurrency = models.PositiveIntegerField(null=True, blank=True)
    active = models.PositiveIntegerField(default=0)  # tasks running now (its heartbeat's)
    processed = models.PositiveBigIntegerField(default=0)  # since that worker started
    software = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return f"{self.hostname} ({'online' if self.online else 'offline'})"

    def expires_at(self) -> datetime | None:
        if self.heartbeat_at is None:
            return None
        return self.heartbeat_at + timedelta(seconds=2 * self.heartbeat_interval)

    def is_online(self, now: datetime) -> bool:
        expires = self.expires_at()
        return self.online and expires is not None and expires >= now


class TaskEvent(models.Model):
    """One task event a worker sent (append-only; pruned to OPS_HISTORY_MAX_EVENTS/_AGE)."""

    class Kind(models.TextChoices):
        RECEIVED = "received"
        STARTED = "started"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        RETRIED = "retried"
        REVOKED = "revoked"

    task_id = models.CharField(max_length=255, db_index=True)
    name = models.CharField(max_length=200, blank=True, default="")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    hostname = models.CharField(max_length=255, blank=True, default="")
    at = models.DateTimeField(db_index=True)  # the worker's clock, when it happened
    runtime = models.FloatField(null=True, blank=True)  # seconds (succeeded)
    detail = models.CharField(max_length=500, blank=True, default="")  # exception, reason

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["kind", "-at"], name="taskstream_taskevent_kind_idx")]

    def __str__(self) -> str:
        return f"{self.name or self.task_id} {self.kind}"


class TaskMinute(models.Model):
    """Task events counted per minute: the overview's hour without scanning event rows."""

    minute = models.DateTimeField(unique=True)
    received = models.PositiveIntegerField(default=0)
    started = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    retried = models.PositiveIntegerField(default=0)
    revoked = models.PositiveIntegerField(default=0)
    runtime_total = models.FloatField(default=0.0)  # over succeeded tasks with a runtime

    class Meta:
        ordering = ["minute"]

    def __str__(self) -> str:
        return f"{self.minute:%H:%M} {self.succeeded} ok {self.failed} failed"


class Alert(models.Model):
    """A threshold crossed (``raised_at``) and, once it no longer is, ``cleared_at``.

    At most one open alert per key, so an alert is announced once however long it lasts.
    """

    class Kind(models.TextChoices):
        QUEUE_WAIT = "queue_wait"
        FAILURE_RATE = "failure_rate"
        MISSED_BEAT = "missed_beat"
        WORKER_GONE = "worker_gone"

    key = models.CharField(max_length=300)  # the kind, or "worker_gone:<hostname>"
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.FloatField()  # what was measured when it was raised
    threshold = models.FloatField()
    detail = models.CharField(max_length=500, blank=True, default="")
    raised_at = models.DateTimeField(db_index=True)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-raised_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["key"], condition=Q(cleared_at=None),
                                               name="taskstream_alert_open_once")]

    def __str__(self) -> str:
        return f"{self.key} ({'open' if self.cleared_at is None else 'cleared'})"

    def payload(self) -> dict[str, Any]:
        """The alert as the ``ops`` topic and the overview carry it."""
        return {"key": self.key, "kind": self.kind, "value": self.value,
                "threshold": self.threshold, "detail": self.detail,
                "raised_at": self.raised_at.isoformat(),
                "cleared_at": self.cleared_at.isoformat() if self.cleared_at else None}
