from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class Notification(models.Model):
    """One entry of a user's inbox; unread while ``read_at`` is empty."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                  related_name="taskstream_notifications")
    kind = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")
    url = models.CharField(max_length=500, blank=True, default="")
    data = models.JSONField(default=dict, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Optional idempotency key: one notification per recipient and key (NULL: no key).
    key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["recipient", "key"],
                                    condition=models.Q(key__isnull=False),
                                    name="ts_notif_recipient_key"),
        ]
        indexes = [
            models.Index(fields=["recipient", "-id"], name="ts_notif_recipient_id"),
            models.Index(fields=["recipient", "read_at"], name="ts_notif_recipient_unread"),
        ]

    def __str__(self) -> str:
        return f"{self.recipient_id}: {self.title}"


class SentEmail(models.Model):
    """One transactional e-mail, by idempotency key: a retried or redelivered task sends it
    at most once. ``attempts`` counts the tries, ``sent_at`` marks success."""

    key = models.CharField(max_length=200, unique=True)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                                  related_name="+")
    to = models.CharField(max_length=254)
    subject = models.CharField(max_length=200, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.key
