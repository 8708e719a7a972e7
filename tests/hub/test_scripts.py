"""Lua scripts run as redis-py Script objects: from any client, loaded when Redis lacks them."""

from __future__ import annotations

import hashlib
import secrets

from taskstream.hub.redis import async_client, script, sync_client


def fresh_lua() -> str:
    # A text this Redis has never seen: the first call meets NOSCRIPT and loads it.
    return f"-- {secrets.token_hex(8)}\nreturn {{KEYS[1], ARGV[1]}}"


def test_a_script_redis_does_not_know_is_loaded_and_run() -> None:
    lua = fresh_lua()
    assert script(sync_client(), lua)(keys=["k"], args=["a"]) == [b"k", b"a"]
    assert sync_client().script_exists(hashlib.sha1(lua.encode()).hexdigest()) == [True]


async def test_the_same_script_runs_from_an_async_client() -> None:
    lua = fresh_lua()
    assert await script(async_client(), lua)(keys=["k"], args=["b"]) == [b"k", b"b"]
    assert script(sync_client(), lua)(keys=["k"], args=["c"]) == [b"k", b"c"]
