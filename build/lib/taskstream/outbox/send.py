"""Send stored outbox events to the hub, oldest first, then delete their rows.

Shared by the fast path (the topics a commit just wrote) and the relay (everything).
Every send is idempotent: the hub logs each event key once per topic, so a row sent
twice (a crash between the publish and the delete, a fast path racing the relay) still
reaches each client once.
"""

from __future__ import annotations

import json
from collections.abc import Collection

from redis import Redis

from taskstream.hub import log
from taskstream.hub.batch import publish_calls

# Rows per round trip. The fast path sends at most this many: a topic with a longer
# backlog (Redis was down) is the relay's work, not a request's.
BATCH = 100


def outbox_send(*, topics: Collection[str] | None = None, client: Redis | None = None) -> int:
    """Publish up to :data:`BATCH` of the oldest unsent events (of ``topics``, or of all),
    in id order, in one pipeline; delete them once Redis has them. Returns how many."""
    from taskstream.models import OutboxEvent

    rows = OutboxEvent.objects.order_by("id")
    if topics is not None:
        rows = rows.filter(topic__in=list(topics))
    batch = list(rows.values_list("id", "topic", "event", "data", "ts", "key")[:BATCH])
    if not batch:
        return 0
    # An older unsent event of a topic comes first, whoever wrote it: per-topic order
    # holds even when another process's fast path failed or has not run yet.
    publish_calls([log.publish_args(json.dumps(topic), json.dumps(event), data, ts, topic, key)
                   for _id, topic, event, data, ts, key in batch], client=client)
    OutboxEvent.objects.filter(pk__in=[row[0] for row in batch]).delete()
    return len(batch)
