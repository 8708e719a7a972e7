"""``doc:<id>`` on a real server: updates applied, stored and fanned out; refusals change
nothing; awareness is ephemeral; non-members are refused."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from pycrdt import Doc, Text

from taskstream.collab import services
from taskstream.collab.models import Document, DocumentUpdate
from taskstream.collab.selectors import copy_at
from taskstream.collab.testing import Editor, b64, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def team(make_user, session_cookie):
    """An owner, an editor, a viewer and an outsider with cookies, and a document."""

    async def make() -> tuple[Document, dict[str, str]]:
        users = {
            name: await sync_to_async(make_user)(name)
            for name in ("owner", "editor", "viewer", "outsider")
        }
        document = await sync_to_async(services.document_create)(owner=users["owner"], title="T")
        for name in ("editor", "viewer"):
            await sync_to_async(services.document_member_set)(
                document=document, by=users["owner"], username=name, role=name
            )
        cookies = {name: await sync_to_async(session_cookie)(u) for name, u in users.items()}
        return document, cookies

    return make


def _stored_text(document_id: Any) -> str:
    copy = copy_at(
        document_id, None, version=Document.objects.get(pk=document_id).version, exact=False
    )
    return str(copy.doc.get("text", type=Text))


async def test_an_update_is_applied_stored_and_reaches_the_others(team, hub_server):
    document, cookies = await team()
    alice = Editor(hub_server, cookies["owner"], str(document.pk), "alice")
    bob = Editor(hub_server, cookies["editor"], str(document.pk), "bob")
    vera = Editor(hub_server, cookies["viewer"], str(document.pk), "vera")
    for editor in (alice, bob, vera):
        await editor.connect()
    answer = await alice.type(0, "hello")
    assert answer["type"] == "published" and answer["cursor"]
    await wait_until(lambda: bob.value == "hello" and vera.value == "hello", what="fan-out")
    assert bob.received[0]["client"] == "alice" and bob.received[0]["version"] == 1
    assert await sync_to_async(_stored_text)(document.pk) == "hello"
    assert (await Document.objects.aget(pk=document.pk)).version == 1
    for editor in (alice, bob, vera):
        await editor.disconnect()


async def test_refused_updates_change_nothing(team, hub_server):
    document, cookies = await team()
    alice = Editor(hub_server, cookies["owner"], str(document.pk), "alice")
    vera = Editor(hub_server, cookies["viewer"], str(document.pk), "vera")
    await alice.connect()
    await vera.connect()
    assert (await alice.type(0, "kept"))["type"] == "published"

    async def refused(editor: Editor, update: bytes) -> str:
        answer = await editor.publish(update)
        assert answer["type"] == "error", answer
        return str(answer["code"])

    assert await refused(alice, b"\x01\x02garbage") == "bad_update"
    # Builds on an insert the server never got: Yjs would keep it pending; refused.
    other: Doc[Any] = Doc()
    text = other.get("text", type=Text)
    text.insert(0, "abc")
    base = other.get_state()
    text.insert(3, "def")
    assert await refused(alice, other.get_update(base)) == "bad_update"
    assert await refused(alice, b"\x00" * 40_000) == "too_large"
    assert await refused(vera, vera.edit(0, "viewer was here")) == "forbidden"
    for data, code in (
        ({"update": "not base64!"}, "bad_frame"),
        ({}, "bad_frame"),
        ({"update": b64(b"\x00\x00"), "client": "x" * 65}, "bad_frame"),
    ):
        answer = await alice.send_publish(data)
        assert (answer["type"], answer["code"]) == ("error", code), answer
    stored = await Document.objects.aget(pk=document.pk)
    assert await DocumentUpdate.objects.filter(document=document).acount() == stored.version
    assert await sync_to_async(_stored_text)(document.pk) == "kept"
    await alice.disconnect()
    await vera.disconnect()


async def test_outsiders_cannot_subscribe_or_publish(team, connect):
    document, cookies = await team()
    outsider = await connect(cookie=cookies["outsider"])
    await outsider.send({"type": "subscribe", "topic": f"doc:{document.pk}", "id": 1})
    assert (await outsider.expect("error"))["code"] == "forbidden"
    await outsider.send(
        {
            "type": "publish",
            "topic": f"doc:{document.pk}",
            "event": "update",
            "data": {"update": b64(b"\x00\x00")},
            "id": 2,
        }
    )
    assert (await outsider.expect("error"))["code"] == "forbidden"
    assert (await Document.objects.aget(pk=document.pk)).version == 0


async def test_awareness_is_relayed_but_never_logged(team, connect):
    document, cookies = await team()
    topic = f"doc:{document.pk}"
    a = await connect(cookie=cookies["viewer"])
    b = await connect(cookie=cookies["editor"])
    await a.subscribe(topic)
    subscribed = await b.subscribe(topic)
    state = base64.b64encode(b"\x01\x07\x01\x02{}").decode()
    await a.send(
        {
            "type": "publish",
            "topic": topic,
            "event": "awareness",
            "data": {"awareness": state, "client": "7"},
            "id": 1,
        }
    )
    event = await b.expect("event")
    assert event["event"] == "awareness" and "cursor" not in event
    assert event["data"] == {"awareness": state, "client": "7"}
    await a.send(
        {
            "type": "publish",
            "topic": topic,
            "event": "awareness",
            "data": {"awareness": b64(b"x" * 5000)},
            "id": 2,
        }
    )
    frame = await a.recv()
    while frame["type"] != "error":
        frame = await a.recv()
    assert frame["code"] == "too_large"
    late = await connect(cookie=cookies["owner"])
    replay = await late.subscribe(topic, since=subscribed["cursor"])
    assert replay["type"] == "subscribed"
    await late.send({"type": "ping", "id": 5})
    assert (await late.recv())["type"] == "pong"  # nothing replayed


async def test_a_removed_member_is_dropped_at_once(team, connect):
    document, cookies = await team()
    topic = f"doc:{document.pk}"
    editor = await connect(cookie=cookies["editor"])
    await editor.subscribe(topic)
    owner = await Document.objects.select_related("owner").aget(pk=document.pk)
    await sync_to_async(services.document_member_remove)(
        document=owner, by=owner.owner, username="editor"
    )
    frame = await editor.recv(timeout=30)
    assert (frame["type"], frame["code"], frame["topic"]) == ("error", "forbidden", topic)
    await editor.send(
        {"type": "publish", "topic": topic, "event": "update", "data": {"update": ""}, "id": 3}
    )
    assert (await editor.expect("error", timeout=30))["code"] == "forbidden"
