"""Run history of periodic tasks and the missed runs the checker found."""

from __future__ import annotations

from django.db import models


class Outcome(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"


class PeriodicRun(models.Model):
    """One run of a task that beat sent (its message carries the schedule's name)."""

    Outcome = Outcome

    # The schedule (django-celery-beat PeriodicTask name) and the Celery task it runs.
    name = models.CharField(max_length=200)
    task = models.CharField(max_length=200)
    task_id = models.CharField(max_length=255, unique=True)
    hostname = models.CharField(max_length=200, blank=True, default="")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.FloatField(null=True, blank=True)  # seconds
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.RUNNING)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["name", "-started_at"], name="taskstream_run_name_idx")]

    def __str__(self) -> str:
        return f"{self.name} at {self.started_at:%Y-%m-%d %H:%M:%S} ({self.outcome})"


class ScheduleWatch(models.Model):
    """When the checker first saw a schedule: the start of its clock if it never ran."""

    name = models.CharField(max_length=200, primary_key=True)
    first_seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name


class MissedRun(models.Model):
    """A schedule that did not run by its due time plus grace; one row per missed due time."""

    name = models.CharField(max_length=200)
    due_at = models.DateTimeField()
    last_run_at = models.DateTimeField(null=True, blank=True)
    detected_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-detected_at"]
        constraints = [models.UniqueConstraint(fields=["name", "due_at"],
                                               name="taskstream_missed_run_once")]

    def __str__(self) -> str:
        return f"{self.name} missed {self.due_at:%Y-%m-%d %H:%M:%S}"
