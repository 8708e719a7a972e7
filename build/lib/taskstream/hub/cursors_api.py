"""Read a topic's latest cursor, to render a page from state and then subscribe ``since`` it.

Read the cursor before the state: whatever is published after the cursor is replayed on
subscribe, so nothing falls between the page and the live stream.
"""

from __future__ import annotations

import json
import logging

from redis.exceptions import RedisError

from taskstream.hub import log
from taskstream.hub.redis import async_client, quick_client, script, sync_client

logger = logging.getLogger("taskstream.hub")


def latest_cursor(topic: str) -> str:
    """The cursor of the newest event of ``topic`` (``<epoch>-0-0`` when it has none)."""
    script_keys, args = log.read_args(topic, None)
    raw = script(sync_client(), log.READ_LUA)(keys=script_keys, args=args)
    return str(log.decode_replay(json.dumps(topic), None, raw).latest)


def latest_cursor_or_none(topic: str) -> str | None:
    """:func:`latest_cursor` within ``QUICK_TIMEOUT``, or ``None`` while Redis does not answer.

    For a page that is whole without it: the state comes from the database, and a client
    without a cursor subscribes from now on (live events, no replay) instead of the page
    failing after the full command timeout.
    """
    script_keys, args = log.read_args(topic, None)
    try:
        raw = script(quick_client(), log.READ_LUA)(keys=script_keys, args=args)
    except RedisError as exc:
        logger.warning("no cursor for %s: Redis does not answer (%s)", topic, exc)
        return None
    return str(log.decode_replay(json.dumps(topic), None, raw).latest)


async def alatest_cursor(topic: str) -> str:
    """Async twin of :func:`latest_cursor`."""
    script_keys, args = log.read_args(topic, None)
    raw = await script(async_client(), log.READ_LUA)(keys=script_keys, args=args)
    return str(log.decode_replay(json.dumps(topic), None, raw).latest)
