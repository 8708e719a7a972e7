"""The ``ops`` topic: staff read it; anyone else gets ``forbidden``."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

pytestmark = pytest.mark.django_db(transaction=True)


async def test_ops_topic_is_staff_only(make_user, session_cookie, connect):
    member = await sync_to_async(make_user)()
    staff = await sync_to_async(make_user)(is_staff=True)
    for user, allowed in ((member, False), (staff, True), (None, False)):
        cookie = await sync_to_async(session_cookie)(user) if user else None
        client = await connect(cookie=cookie)
        await client.send({"type": "subscribe", "topic": "ops", "id": 1})
        frame = await client.recv()
        if allowed:
            assert frame["type"] == "subscribed"
        else:
            assert (frame["type"], frame["code"]) == ("error", "forbidden")
