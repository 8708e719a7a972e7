"""The HTTP API of shared documents: listing, sharing, roles, refusals, sync."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.test import Client
from pycrdt import Doc, Text

from taskstream.collab import services
from taskstream.collab.models import Document, DocumentMember

pytestmark = pytest.mark.django_db(transaction=True)


def _client(user: Any, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def _post(client: Client, url: str, body: dict[str, Any]) -> Any:
    return client.post(url, body, content_type="application/json")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _typed(text: str) -> bytes:
    doc: Doc[Any] = Doc()
    doc.get("text", type=Text).insert(0, text)
    return doc.get_update()


def test_create_share_and_list(make_user):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    a = _client(alice)
    created = _post(a, "/api/collab/docs/", {"title": "Plan"})
    assert created.status_code == 201, created.content
    doc = created.json()
    assert doc["role"] == "owner" and doc["owner"] == "alice" and doc["members"] == []
    assert doc["version"] == 0 and doc["topic"] == f"doc:{doc['id']}"
    url = f"/api/collab/docs/{doc['id']}/"
    shared = _post(a, url + "members/", {"username": "bob", "role": "viewer"})
    assert shared.status_code == 201 and shared.json() == {"username": "bob", "role": "viewer"}
    detail = _client(bob).get(url).json()
    assert detail["role"] == "viewer"
    assert detail["members"] == [{"username": "bob", "role": "viewer"}]
    assert [d["id"] for d in _client(bob).get("/api/collab/docs/").json()] == [doc["id"]]
    # Non-members: the document does not exist for them, in lists and by id.
    c = _client(carol)
    assert c.get("/api/collab/docs/").json() == []
    for response in (
        c.get(url),
        _post(c, url + "sync/", {"state_vector": ""}),
        _post(c, url + "members/", {"username": "carol", "role": "editor"}),
    ):
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    # Only the owner shares; a member may leave.
    refused = _post(_client(bob), url + "members/", {"username": "carol", "role": "editor"})
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert _client(bob).delete(url + "members/bob/").status_code == 204
    assert not DocumentMember.objects.filter(document_id=doc["id"]).exists()


def test_bad_input_is_a_4xx_with_a_code(make_user):
    alice = make_user("alice")
    make_user("bob")
    a = _client(alice)
    doc = _post(a, "/api/collab/docs/", {"title": "T"}).json()
    url = f"/api/collab/docs/{doc['id']}/"
    cases = [
        (_post(a, "/api/collab/docs/", {"title": ""}), 422, "invalid"),
        (_post(a, url + "members/", {"username": "bob", "role": "admin"}), 422, "invalid"),
        (_post(a, url + "members/", {"username": "nobody", "role": "editor"}), 422, "invalid"),
        (_post(a, url + "sync/", {"state_vector": "!!"}), 422, "invalid"),
        (_post(a, url + "sync/", {"state_vector": _b64(b"\x05\x01")}), 422, "invalid"),
        (a.delete(url + "members/bob/"), 422, "invalid"),
        (a.get("/api/collab/docs/not-a-uuid/"), 422, "invalid"),
        (Client().get("/api/collab/docs/"), 401, "unauthenticated"),
    ]
    for response, status, code in cases:
        assert (response.status_code, response.json()["code"]) == (status, code), response.content


def test_writes_need_csrf(make_user):
    alice = make_user("alice")
    refused = _post(_client(alice, csrf=True), "/api/collab/docs/", {"title": "x"})
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"
    assert not Document.objects.exists()


def test_sync_answers_what_the_client_lacks(make_user):
    alice = make_user("alice")
    document = services.document_create(owner=alice, title="T")
    services.update_apply(document_id=document.pk, user=alice, update=_typed("hello"))
    url = f"/api/collab/docs/{document.pk}/sync/"
    whole = _post(_client(alice), url, {"state_vector": ""}).json()
    assert whole["version"] == 1 and whole["cursor"]
    mine: Doc[Any] = Doc()
    mine.apply_update(base64.b64decode(whole["update"]))
    assert str(mine.get("text", type=Text)) == "hello"
    # Up to date: nothing to send but an empty update.
    again = _post(_client(alice), url, {"state_vector": _b64(mine.get_state())}).json()
    assert base64.b64decode(again["update"]) == b"\x00\x00"
    assert again["state_vector"] == _b64(mine.get_state())
