"""Write outbox rows inside the caller's transaction; publish them right after it commits."""

from __future__ import annotations

import logging
import secrets
import threading
from typing import Any

from django.db import transaction

from taskstream.exceptions import HubUsageError
from taskstream.hub.publish import encode_event

logger = logging.getLogger("taskstream.outbox")

# Topics with rows written by this thread since its last fast path. A thread runs one
# transaction at a time, so after a commit these are the topics to look at (a topic of a
# rolled-back transaction may linger: looking at it once more costs one cheap query).
_pending = threading.local()


def outbox_publish(*, topic: str, event: str, data: dict[str, Any]) -> None:
    """Publish ``event`` on ``topic`` if, and when, the current transaction commits.

    Call it inside the ``transaction.atomic()`` block that makes the change: the event is
    stored with the change and published right after the commit (a rollback drops both).
    Raises ``InvalidTopic`` or ``EventTooLarge`` at once, inside the transaction, so the
    caller can send a smaller event; ``HubUsageError`` outside a transaction.
    """
    from taskstream.models import OutboxEvent

    if not transaction.get_connection().in_atomic_block:
        raise HubUsageError("outbox_publish() belongs inside the transaction.atomic() block "
                            "that makes the change it announces")
    _topic_json, _event_json, data_json, ts = encode_event(topic, event, data)
    OutboxEvent.objects.create(topic=topic, event=event, data=data_json, ts=ts,
                               key=secrets.token_hex(16))
    topics: set[str] | None = getattr(_pending, "topics", None)
    if topics is None:
        topics = _pending.topics = set()
    topics.add(topic)
    # One callback per call: Django drops the callbacks of a rolled-back savepoint, so
    # each surviving event has one. The first to run sends them all; the rest find
    # nothing pending and return.
    transaction.on_commit(_after_commit)


def _after_commit() -> None:
    topics: set[str] | None = getattr(_pending, "topics", None)
    if not topics:
        return
    _pending.topics = set()
    from taskstream.hub.redis import quick_client
    from taskstream.outbox.send import outbox_send

    try:
        outbox_send(topics=topics, client=quick_client())
    except Exception as exc:
        # The change is committed and its event stored: the relay sends it. Never fail
        # the caller (a view would answer 500 for a stored change, and be sent again).
        logger.warning("outbox: left %s to the relay (%s: %s)", sorted(topics),
                       type(exc).__name__, exc)
