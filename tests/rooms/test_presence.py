"""Presence bookkeeping against a real Redis: per-user join/leave and expiry of dead entries."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
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
    await one.close()  # finishes its pending removal
    assert sorted(p["username"] for p in await one.present(slug)) == ["ann", "b/o"]
    two.leave_soon(slug, "c1")
    two.leave_soon(slug, "c2")
    two.leave_soon(slug, "unknown")  # a socket that never joined is ignored
    await two.close()
    assert await one.present(slug) == []


async def test_entries_of_a_process_that_stops_refreshing_expire(redis_url, settings):
    slug = _slug()
    with override_settings(TASKSTREAM={**settings.TASKSTREAM, "ROOM_PRESENCE_TTL": 0.3}):
        dead, alive = PresenceTracker(), PresenceTracker()
        assert [p["username"] for p in await dead.join(slug, "c1", FakeUser(1, "ann"))] == ["ann"]
        dead.local.clear()  # the process died: nothing refreshes its entry
        await alive.join(slug, "c9", FakeUser(9, "zed"))
        # The next refreshes after the lifetime sweep the dead entry out.
        deadline = time.monotonic() + 10
        while [p["username"] for p in await alive.present(slug)] != ["zed"]:
            assert time.monotonic() < deadline, "the dead entry never expired"
            await asyncio.sleep(0.05)
            await alive.refresh()
        await alive.close()
        await dead.close()


async def test_the_sync_listing_views_use_shows_who_is_present(redis_url):
    slug = _slug()
    tracker = PresenceTracker()
    await tracker.join(slug, "c1", FakeUser(3, "cy"))
    listed = await sync_to_async(presence_list_now)(slug)
    assert [(p["id"], p["username"]) for p in listed] == [(3, "cy")]
    tracker.leave_soon(slug, "c1")
    await tracker.close()
    assert await sync_to_async(presence_list_now)(slug) == []
