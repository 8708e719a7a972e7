from __future__ import annotations

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

# A slug is the key of the room's hub topic (``room:<slug>``), so it stays within it.
SLUG_PATTERN = r"[a-z0-9][a-z0-9-]{0,49}"


class Room(models.Model):
    """A chat room: public (any signed-in user) or members-only."""

    slug = models.CharField(max_length=50, unique=True,
                            validators=[RegexValidator(f"^{SLUG_PATTERN}$")])
    name = models.CharField(max_length=100)
    is_private = models.BooleanField(default=False)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True,
                                     related_name="taskstream_rooms")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def topic(self) -> str:
        return f"room:{self.slug}"


class Message(models.Model):
    """One chat message; edits and deletes keep the row (``edited_at``, ``deleted_at``)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL,
                               related_name="taskstream_messages")
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    edited_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # History pages walk one room backwards by id: ids grow in insertion order.
        indexes = [models.Index(fields=["room", "-id"], name="ts_message_room_id")]

    def __str__(self) -> str:
        return f"{self.room_id}#{self.pk}"
