"""Presence bookkeeping against a real Redis: per-user join/leave and expiry of dead entries."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from django.test import override_settings

from taskstream.rooms.presence import PresenceTracker, presence_list_now


@dataclass
class FakeUser:  # only what presence reads from a user
    pk: int
    username: str

    def get_username(self) -> str:
        return self.username


def _slug() -> str:
    return f"p-{secrets.token_hex(4)}"


async def test_users_not_sockets_are_present(redis_url):
    slug = _slug()
    one, two = PresenceTracker(), PresenceTracker()  # two processes
    ann = FakeUser(1, "ann")
    assert [p["username"] for p in await one.join(slug, "c1", ann)] == ["ann"]
    # The same socket id in another process is another socket.
    assert [p["username"] for p in await two.join(slug, "c1", ann)] == ["ann"]
    bo = FakeUser(2, "b|o")  # the separator in a name does not break decoding
    present = await two.join(slug, "c2", bo)
    assert sorted(p["username"] for p in present) == ["ann", "b/o"]
    one.leave_soon(slug, "c1")
    await asyncio.sleep(0.05)
    assert sorted(p["username"] for p in await one.present(slug)) == ["ann", "b/o"]
    two.leave_soon(slug, "c1")
    two.leave_soon(slug, "c2")
    two.leave_soon(slug, "unknown")  # a socket that never joined is ignored
    for _ in range(100):
        if not await one.present(slug):
            break
        await asyncio.sleep(0.02)
    assert await one.present(slug) == []
    await one.close()
    await two.close()


async def test_entries_of_a_process_that_stops_refreshing_expire(redis_url, settings):
    slug = _slug()
    with override_settings(TASKSTREAM={**settings.TASKSTREAM, "ROOM_PRESENCE_TTL": 0.3}):
        dead, alive = PresenceTracker(), PresenceTracker()
        await dead.join(slug, "c1", FakeUser(1, "ann"))
        dead.local.clear()  # the process died: nothing refreshes its entry
        await alive.join(slug, "c9", FakeUser(9, "zed"))
        await asyncio.sleep(0.5)
        await alive.refresh()
        assert [p["username"] for p in await alive.present(slug)] == ["zed"]
        await alive.close()
        await dead.close()


def test_sync_listing(redis_url):
    assert presence_list_now(_slug()) == []
