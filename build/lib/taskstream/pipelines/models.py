"""Uploads, pipelines and their chunks. A pipeline's state is its ``Job``'s state."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Upload(models.Model):
    """A CSV file a user uploaded, stored under a generated name, deduplicated by hash."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="taskstream_uploads")
    # For display only: never part of a path.
    original_name = models.CharField(max_length=200, blank=True, default="")
    # The storage name we generated ("taskstream/uploads/<uuid>.csv").
    stored_name = models.CharField(max_length=300)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    encoding = models.CharField(max_length=20, default="utf-8")
    delimiter = models.CharField(max_length=1, default=",")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["owner", "sha256"],
                                               name="taskstream_upload_hash_per_owner")]

    def __str__(self) -> str:
        return f"{self.original_name or self.stored_name} ({self.size} B)"


class Pipeline(models.Model):
    """One processing of an upload; ``job`` is the parent job, steps are its children."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="taskstream_pipelines")
    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="pipelines")
    job = models.OneToOneField("taskstream_jobs.Job", on_delete=models.CASCADE,
                               related_name="pipeline")
    kind = models.CharField(max_length=100, default="summary")
    # The broker queue of every step ("" = the tasks' own routes).
    queue = models.CharField(max_length=200, blank=True, default="")
    # Set by validate: [{"name": ..., "numeric": bool}, ...] and the header's line count.
    columns = models.JSONField(default=list, blank=True)
    header_end = models.BigIntegerField(default=0)
    header_lines = models.IntegerField(default=1)
    total_rows = models.BigIntegerField(null=True, blank=True)
    # Set by aggregate/render: totals, top groups, bad rows (line numbers).
    summary = models.JSONField(default=dict, blank=True)
    report_csv = models.CharField(max_length=300, blank=True, default="")
    report_html = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"pipeline {self.id} of {self.upload_id}"


class Chunk(models.Model):
    """A byte range of the upload holding ``rows`` records, processed by one child job."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    start = models.BigIntegerField()
    end = models.BigIntegerField()
    first_line = models.BigIntegerField()
    rows = models.IntegerField()
    done_rows = models.IntegerField(default=0)
    job = models.OneToOneField("taskstream_jobs.Job", on_delete=models.CASCADE,
                               related_name="pipeline_chunk")

    class Meta:
        ordering = ["pipeline", "index"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "index"],
                                               name="taskstream_chunk_index")]

    def __str__(self) -> str:
        return f"chunk {self.index} of {self.pipeline_id}"
