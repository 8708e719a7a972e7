"""Read back what a topic's log still holds, for pages that show a history (a job's attempts).

The log keeps the last ``LOG_MAXLEN`` events of the last ``LOG_MAX_AGE`` seconds, so a
history read here is the retained window, not a record: ``complete`` says whether it
starts at the topic's first event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from taskstream.hub import keys
from taskstream.hub.redis import sync_client

# Long topics are read in pages, so one read never holds more than this many entries.
_PAGE = 500


@dataclass(frozen=True)
class LoggedEvent:
    event: str
    data: dict[str, Any]
    ts: str


@dataclass(frozen=True)
class History:
    events: list[LoggedEvent]
    # False when older events were trimmed (or expired) before this read.
    complete: bool


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def topic_history(topic: str, *, events: frozenset[str] | None = None) -> History:
    """The retained events of ``topic``, oldest first; only ``events`` when given."""
    client = sync_client()
    key = keys.log_key(topic)
    found: list[LoggedEvent] = []
    complete = True
    start = "-"
    first = True
    while True:
        entries: list[Any] = client.xrange(key, start, "+", count=_PAGE) or []
        for _sid, fields in entries:
            values = {_text(k): _text(v) for k, v in (fields or {}).items()}
            if first:
                # Each entry names the one before it: '0-0' only on the topic's first event.
                complete = values.get("p") == "0-0"
                first = False
            name = json.loads(values["e"])
            if events is None or name in events:
                found.append(LoggedEvent(name, json.loads(values["d"]), values["t"]))
        if len(entries) < _PAGE:
            return History(found, complete)
        start = "(" + _text(entries[-1][0])
