"""The core app's one table: the outbox of state events (see :mod:`taskstream.outbox`)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from taskstream.hub.protocol import MAX_EVENT_LEN, MAX_TOPIC_LEN


class OutboxEvent(models.Model):
    """An event written in the transaction of the change it announces, not yet on the hub.

    Rows live only until the event is in the topic's log: the fast path or the relay
    deletes them once sent, so the table holds the backlog and nothing else.
    """

    id = models.BigAutoField(primary_key=True)
    topic = models.CharField(max_length=MAX_TOPIC_LEN)
    event = models.CharField(max_length=MAX_EVENT_LEN)
    # The event's data as it goes on the wire: encoded (and size-checked) once, at write.
    data = models.TextField()
    # The event's timestamp: when the change happened, not when Redis got it.
    ts = models.CharField(max_length=32)
    # Makes the hub's publish idempotent: a resend of the same row is not logged twice.
    key = models.CharField(max_length=32)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "taskstream_outbox"
        # Per-topic order: the fast path reads a topic's unsent rows oldest first.
        indexes = [models.Index(fields=["topic", "id"], name="taskstream_outbox_topic")]

    def __str__(self) -> str:
        return f"{self.event} on {self.topic} (#{self.id})"
