"""Write outbox rows inside the caller's transaction; publish them right after it commits."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from django.db import transaction

from taskstream.exceptions import HubUsageError, InvalidTopic
from taskstream.hub.protocol import MAX_TOPIC_LEN, TOPIC_RE
from taskstream.hub.publish import encode_event
from taskstream.outbox.statements import Row, outbox_insert

logger = logging.getLogger("taskstream.outbox")

# Topics of rows written by this thread whose fast path must read the table (an older
# unsent row of the topic may exist, or the database cannot tell at INSERT time). A thread
# runs one transaction at a time, so after a commit these are the topics to look at (a
# topic of a rolled-back transaction may linger: looking at it once more costs one cheap
# query).
_pending = threading.local()


def outbox_publish(*, topic: str, event: str, data: dict[str, Any]) -> None:
    """Publish ``event`` on ``topic`` if, and when, the current transaction commits.

    Call it inside the ``transaction.atomic()`` block that makes the change: the event is
    stored with the change and published right after the commit (a rollback drops both).
    Raises ``InvalidTopic`` or ``EventTooLarge`` at once, inside the transaction, so the
    caller can send a smaller event; ``HubUsageError`` outside a transaction.
    """
    outbox_write_topics(topics=(topic,), event=event, data=data)


def outbox_write(*, topic: str, event: str, data: dict[str, Any]) -> str:
    """:func:`outbox_publish`, returning the event's key: a hub ``on_publish`` hook hands it
    on in its ``Publication``, so the hub's own publish of the event is idempotent with
    the outbox's."""
    return outbox_write_topics(topics=(topic,), event=event, data=data)[0]


def outbox_write_topics(*, topics: Sequence[str], event: str,
                        data: Mapping[str, Any]) -> list[str]:
    """:func:`outbox_publish` of one event to several topics (a job's ``job:<id>`` and
    ``user:<owner>``): encoded once, stored in one INSERT, sent in one round trip after the
    commit. Returns the events' keys, in the order of ``topics``."""
    if not transaction.get_connection().in_atomic_block:
        raise HubUsageError("outbox_publish() belongs inside the transaction.atomic() block "
                            "that makes the change it announces")
    if not topics:
        return []
    _topic_json, _event_json, data_json, ts = encode_event(topics[0], event, data)
    for topic in topics[1:]:
        if not (len(topic) <= MAX_TOPIC_LEN and TOPIC_RE.match(topic)):
            raise InvalidTopic(f"invalid topic {topic!r}")
    keys = [secrets.token_hex(16) for _ in topics]
    rows = [(topic, event, data_json, ts, key) for topic, key in zip(topics, keys, strict=True)]
    inserted = outbox_insert(rows)
    if inserted is not None and not any(older for _id, older in inserted):
        # No older unsent row of these topics: after the commit these rows are the whole
        # backlog of their topics, sent from memory without reading the table again.
        batch: list[Row] = [(row_id, *row) for (row_id, _older), row in
                            zip(inserted, rows, strict=True)]
        transaction.on_commit(partial(_send_batch, batch))
        return keys
    pending: set[str] | None = getattr(_pending, "topics", None)
    if pending is None:
        pending = _pending.topics = set()
    pending.update(topics)
    # One callback per call: Django drops the callbacks of a rolled-back savepoint, so
    # each surviving event has one. The first to run sends them all; the rest find
    # nothing pending and return.
    transaction.on_commit(_after_commit)
    return keys


def _send_batch(batch: list[Row]) -> None:
    """After the commit: send rows known to be their topics' oldest unsent ones."""
    from taskstream.hub.redis import quick_client
    from taskstream.outbox.send import outbox_send_rows

    try:
        outbox_send_rows(batch, client=quick_client())
    except Exception as exc:
        # The change is committed and its event stored: the relay sends it. Never fail
        # the caller (a view would answer 500 for a stored change, and be sent again).
        logger.warning("outbox: left %s to the relay (%s: %s)",
                       sorted({row[1] for row in batch}), type(exc).__name__, exc)


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
