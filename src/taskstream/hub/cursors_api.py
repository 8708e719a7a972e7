"""Read a topic's latest cursor, to render a page from state and then subscribe ``since`` it.

Read the cursor before the state: whatever is published after the cursor is replayed on
subscribe, so nothing falls between the page and the live stream.
"""

from __future__ import annotations

import json

from taskstream.hub import log
from taskstream.hub.redis import async_client, script, sync_client


def latest_cursor(topic: str) -> str:
    """The cursor of the newest event of ``topic`` (``<epoch>-0-0`` when it has none)."""
    script_keys, args = log.read_args(topic, None)
    raw = script(sync_client(), log.READ_LUA)(keys=script_keys, args=args)
    return str(log.decode_replay(json.dumps(topic), None, raw).latest)


async def alatest_cursor(topic: str) -> str:
    """Async twin of :func:`latest_cursor`."""
    script_keys, args = log.read_args(topic, None)
    raw = await script(async_client(), log.READ_LUA)(keys=script_keys, args=args)
    return str(log.decode_replay(json.dumps(topic), None, raw).latest)
