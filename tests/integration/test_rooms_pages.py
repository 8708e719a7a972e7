"""The demo's room pages rendered by Django: escaping, access, forms."""

from __future__ import annotations

import pytest
from django.test import Client

from taskstream.rooms.models import Message, Room
from taskstream.rooms.services import room_create

pytestmark = pytest.mark.django_db(transaction=True)

XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>'


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_room_page_shows_a_script_payload_as_text(make_user):
    alice = make_user("alice")
    room = room_create(slug="xss", name="<b>Bold</b> room", creator=alice)
    Message.objects.create(room=room, author=alice, body=XSS)
    html = _client(alice).get("/rooms/xss/").content.decode()
    assert XSS not in html
    assert "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in html
    assert "&lt;b&gt;Bold&lt;/b&gt; room" in html
    assert "<script>window.__xss" not in html


def test_private_room_page_is_for_members(make_user):
    owner, outsider = make_user("owner"), make_user("outsider")
    room_create(slug="inner", name="Inner", creator=owner, is_private=True)
    # Not a member: the same 404 as a room that does not exist (names cannot be probed).
    assert _client(outsider).get("/rooms/inner/").status_code == 404
    assert "Inner" not in _client(outsider).get("/rooms/").content.decode()
    assert _client(owner).get("/rooms/inner/").status_code == 200
    assert Client().get("/rooms/inner/").status_code == 302  # to the login page
    assert _client(owner).get("/rooms/nope/").status_code == 404


def test_rooms_page_opens_rooms_and_adds_members(make_user):
    alice, bob = make_user("alice"), make_user("bob")
    http = _client(alice)
    listing = http.get("/rooms/")
    assert 'data-room="lobby"' in listing.content.decode()  # the demo always has a lobby
    created = http.post("/rooms/", {"name": "Team", "slug": "team", "private": "on"})
    assert created.status_code == 302 and created["Location"] == "/rooms/team/"
    room = Room.objects.get(slug="team")
    assert room.is_private and list(room.members.all()) == [alice]
    refused = http.post("/rooms/", {"name": "Bad", "slug": "Not A Slug!"}, follow=True)
    assert "Could not open the room" in refused.content.decode()
    assert not Room.objects.filter(name="Bad").exists()
    assert _client(bob).get("/rooms/team/").status_code == 404
    http.post("/rooms/team/members/", {"username": "bob"})
    assert _client(bob).get("/rooms/team/").status_code == 200
    # Members cannot add members; only the creator (or staff) can.
    _client(bob).post("/rooms/team/members/", {"username": "alice"})
    carol = make_user("carol")
    _client(bob).post("/rooms/team/members/", {"username": carol.username})
    assert not room.members.filter(pk=carol.pk).exists()


def test_every_page_has_the_bell(make_user):
    html = _client(make_user()).get("/rooms/").content.decode()
    assert 'id="bell"' in html and "example/bell.js" in html


def test_admin_lists_rooms_messages_notifications_and_emails(make_user):
    staff = make_user("root", is_staff=True, is_superuser=True)
    room = room_create(slug="adm", name="Adm", creator=staff)
    Message.objects.create(room=room, author=staff, body="hi")
    http = _client(staff)
    for path in ("taskstream_rooms/room", "taskstream_rooms/message",
                 "taskstream_notifications/notification", "taskstream_notifications/sentemail"):
        assert http.get(f"/admin/{path}/").status_code == 200, path
