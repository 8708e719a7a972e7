"""The ``Job`` row: one unit of background work, owned by a user."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

from taskstream.jobs.states import State


class Job(models.Model):
    """A background job; its state changes only through the services' conditional UPDATEs."""

    State = State

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="taskstream_jobs")
    # The Celery task name of a LiveTask ("demo.slow").
    kind = models.CharField(max_length=200, db_index=True)
    params = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    progress_current = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(null=True, blank=True)
    progress_message = models.CharField(max_length=500, blank=True, default="")
    result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    error_type = models.CharField(max_length=200, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    # Shown to staff only: it can hold paths, SQL and data of other users.
    error_traceback = models.TextField(blank=True, default="")
    # Runs started so far (a retry or a take-over after a lost worker is another run).
    attempt = models.PositiveIntegerField(default=0)
    celery_task_id = models.CharField(max_length=255, blank=True, default="", db_index=True)
    # The broker queue of every run ("" = the task's own route); retries and the reaper use it.
    queue = models.CharField(max_length=200, blank=True, default="")
    # Identifies the run that holds the job; completion requires it, so a stale run can't.
    run_token = models.CharField(max_length=32, blank=True, default="")
    cancel_requested = models.BooleanField(default=False)
    # NULL, not "": the unique constraint applies only to jobs that have a key.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE,
                               related_name="children")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # When a retrying job's next run is due.
    eta = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "idempotency_key"],
                                    condition=Q(idempotency_key__isnull=False),
                                    name="taskstream_job_idempotency_per_owner"),
            models.CheckConstraint(condition=Q(state__in=State.values),
                                   name="taskstream_job_state_valid"),
        ]
        indexes = [
            models.Index(fields=["owner", "-created_at"], name="taskstream_job_owner_idx"),
            models.Index(fields=["state", "heartbeat_at"], name="taskstream_job_reaper_idx"),
            # The claim counts the owner's running top-level jobs (JOB_MAX_RUNNING_PER_USER):
            # a small partial index, only the rows that are running now.
            models.Index(fields=["owner"], condition=Q(state="running", parent__isnull=True),
                         name="taskstream_job_running_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.state})"

    @property
    def topic(self) -> str:
        return f"job:{self.id}"
