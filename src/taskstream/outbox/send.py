"""Send stored outbox events to the hub, oldest first, then delete their rows.

Shared by the fast path (the topics a commit just wrote) and the relay (everything).
Every send is idempotent: the hub logs each event key once per topic, so a row sent
twice (a crash between the publish and the delete, a fast path racing the relay) still
reaches each client once.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence

from redis import Redis

from taskstream.hub import log
from taskstream.hub.batch import publish_calls
from taskstream.outbox.statements import Row, outbox_delete, outbox_oldest

# Rows per round trip. The fast path sends at most this many: a topic with a longer
# backlog (Redis was down) is the relay's work, not a request's.
BATCH = 100


def outbox_send(*, topics: Collection[str] | None = None, client: Redis | None = None) -> int:
    """Publish up to :data:`BATCH` of the oldest unsent events (of ``topics``, or of all),
    in id order, in one pipeline; delete them once Redis has them. Returns how many."""
    batch = outbox_oldest(topics=None if topics is None else list(topics), limit=BATCH)
    # An older unsent event of a topic comes first, whoever wrote it: per-topic order
    # holds even when another process's fast path failed or has not run yet.
    return outbox_send_rows(batch, client=client)


def outbox_send_rows(batch: Sequence[Row], *, client: Redis | None = None) -> int:
    """Publish ``batch`` (stored rows, each its topic's oldest unsent ones, in id order) in
    one pipeline; delete the rows once Redis has them. Returns how many."""
    if not batch:
        return 0
    publish_calls([log.publish_args(json.dumps(topic), json.dumps(event), data, ts, topic, key)
                   for _id, topic, event, data, ts, key in batch], client=client)
    outbox_delete(ids=[row[0] for row in batch])
    return len(batch)
