from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

# The key of a document's hub topic (``doc:<id>``): its uuid, as Django prints it.
ID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class Role(models.TextChoices):
    EDITOR = "editor"
    VIEWER = "viewer"


class Document(models.Model):
    """A shared Yjs document: a compacted snapshot plus the updates applied since.

    ``version`` counts applied updates; ``snapshot_version`` is the last one the snapshot
    holds, so the state is ``snapshot`` + every :class:`DocumentUpdate` with a greater seq.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="taskstream_documents"
    )
    title = models.CharField(max_length=200)
    public_read = models.BooleanField(
        default=False, help_text="any signed-in user may read (not edit)"
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="DocumentMember",
        related_name="taskstream_shared_documents",
        blank=True,
    )
    snapshot = models.BinaryField(default=b"", blank=True, editable=False)
    snapshot_version = models.PositiveBigIntegerField(default=0, editable=False)
    version = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.title

    @property
    def topic(self) -> str:
        return f"doc:{self.pk}"


class DocumentMember(models.Model):
    """A user's access to a document other than its owner's: edit, or only read."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="taskstream_document_memberships",
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.EDITOR)
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["document", "user"], name="ts_docmember_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.role} {self.document_id}"


class DocumentUpdate(models.Model):
    """One applied Yjs v1 update, kept until compaction merges it into the snapshot."""

    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="updates")
    seq = models.PositiveBigIntegerField()
    data = models.BinaryField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["document", "seq"], name="ts_docupdate_seq")]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.seq}"
