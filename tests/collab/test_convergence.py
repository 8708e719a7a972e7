"""Three editors, each on a different server process, edit one document concurrently and
offline, and converge to the same text; a restart loses nothing acknowledged."""

from __future__ import annotations

import asyncio
import random
import signal
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from taskstream.collab import services
from taskstream.collab.testing import Editor, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def servers(hub_server: Any, start_server: Any) -> list[Any]:
    """Three server processes sharing the database and Redis."""
    return [hub_server, start_server(), start_server()]


@pytest.fixture
def trio(make_user, session_cookie):
    async def make() -> tuple[str, list[str]]:
        users = [await sync_to_async(make_user)(name) for name in ("ann", "ben", "cid")]
        document = await sync_to_async(services.document_create)(owner=users[0], title="T")
        for user in users[1:]:
            await sync_to_async(services.document_member_set)(
                document=document, by=users[0], username=user.username, role="editor"
            )
        return str(document.pk), [await sync_to_async(session_cookie)(u) for u in users]

    return make


async def _type_randomly(
    editor: Editor, rng: random.Random, count: int, mark: str, *, deletes: bool = False
) -> None:
    for i in range(count):
        index = rng.randint(0, len(editor.value))
        if deletes and i % 5 == 4 and len(editor.value) > 2:
            answer = await editor.type(rng.randrange(len(editor.value) - 1), delete=1)
        else:
            answer = await editor.type(index, mark)
        assert answer["type"] == "published", answer


async def _server_text(server: Any, cookie: str, doc_id: str) -> str:
    """What a client that never saw the document gets from a sync."""
    late = Editor(server, cookie, doc_id, "late")
    await late.connect()
    await late.disconnect()
    return late.value


async def test_concurrent_and_offline_edits_converge(servers, trio):
    doc_id, cookies = await trio()
    editors = [
        Editor(server, cookie, doc_id, name)
        for server, cookie, name in zip(servers, cookies, "ABC", strict=True)
    ]
    for editor in editors:
        await editor.connect()
    rng = random.Random(14)
    # Online, all at once, each through its own server process.
    await asyncio.gather(
        *(_type_randomly(e, random.Random(rng.random()), 40, e.name.lower()) for e in editors)
    )
    await wait_until(lambda: len({e.value for e in editors}) == 1, what="online convergence")
    assert sorted(editors[0].value) == sorted("a" * 40 + "b" * 40 + "c" * 40)
    # Now with deletes, possibly of the same character at once.
    await asyncio.gather(
        *(
            _type_randomly(e, random.Random(rng.random()), 20, e.name.lower(), deletes=True)
            for e in editors
        )
    )
    await wait_until(lambda: len({e.value for e in editors}) == 1, what="convergence")
    assert 120 + 3 * 16 - 3 * 4 <= len(editors[0].value) <= 120 + 3 * 16

    # C goes offline and keeps typing; A and B keep typing meanwhile.
    offline = editors[2]
    await offline.disconnect()
    for _ in range(15):
        offline.edit(rng.randint(0, len(offline.value)), "z")
    await asyncio.gather(
        *(
            _type_randomly(e, random.Random(rng.random()), 20, e.name.lower(), deletes=True)
            for e in editors[:2]
        )
    )
    assert "z" not in editors[0].value
    await offline.connect()  # sync, then send what the server lacks
    await wait_until(lambda: len({e.value for e in editors}) == 1, what="offline convergence")
    text = editors[0].value
    assert text.count("z") == 15  # every offline edit arrived (nobody else types z)
    for server in servers:
        assert await _server_text(server, cookies[0], doc_id) == text
    for editor in editors:
        await editor.disconnect()


async def test_a_restart_loses_nothing_acknowledged(start_server, trio):
    doc_id, cookies = await trio()
    server = start_server()
    editor = Editor(server, cookies[0], doc_id, "A")
    await editor.connect()
    for i in range(30):
        answer = await editor.type(len(editor.value), str(i % 10))
        assert answer["type"] == "published"
    acknowledged = editor.value
    await editor.disconnect()
    server.stop(signal.SIGKILL)  # no shutdown: only what was committed survives
    server.start()
    assert await _server_text(server, cookies[1], doc_id) == acknowledged
    server.stop()
