"""The inbox against a real server and Redis: live delivery, replay after a drop, badge
counts kept in step across sockets, the HTTP API, and job completion notices."""

from __future__ import annotations

import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from taskstream.notifications.models import Notification
from taskstream.notifications.services import notification_create

pytestmark = pytest.mark.django_db(transaction=True)


def _client(user: Any, *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    client.force_login(user)
    return client


def _notify(user: Any, n: int) -> Notification:
    return notification_create(recipient=user, kind="demo", title=f"note {n}",
                               body="<b>body</b>", url="/somewhere/", data={"n": n})


async def test_notification_arrives_live_and_after_reconnect(connect, make_user, session_cookie):
    user = await sync_to_async(make_user)()
    cookie = await sync_to_async(session_cookie)(user)
    topic = f"user:{user.pk}"
    ws = await connect(cookie=cookie)
    await ws.subscribe(topic)
    await sync_to_async(_notify)(user, 1)
    live = await ws.expect("event")
    assert live["event"] == "notification.created"
    assert (live["data"]["title"], live["data"]["unread"], live["data"]["read"]) == ("note 1", 1,
                                                                                  False)
    assert live["data"]["data"] == {"n": 1} and live["data"]["url"] == "/somewhere/"
    await ws.close()
    for n in (2, 3):  # while the browser is offline
        await sync_to_async(_notify)(user, n)
    again = await connect(cookie=cookie)
    await again.subscribe(topic, since=live["cursor"])
    replayed = await again.events(2)
    assert [e["data"]["title"] for e in replayed] == ["note 2", "note 3"]
    assert replayed[-1]["data"]["unread"] == 3
    http = await sync_to_async(_client)(user)
    inbox = (await sync_to_async(http.get)("/api/notifications/")).json()
    assert [i["title"] for i in inbox["items"]] == ["note 3", "note 2", "note 1"]
    assert inbox["unread"] == 3


async def test_badge_count_is_the_same_in_every_tab(connect, make_user, session_cookie):
    user = await sync_to_async(make_user)()
    cookie = await sync_to_async(session_cookie)(user)
    topic = f"user:{user.pk}"
    tabs = [await connect(cookie=cookie) for _ in range(2)]
    for tab in tabs:
        await tab.subscribe(topic)
    first = await sync_to_async(_notify)(user, 1)
    await sync_to_async(_notify)(user, 2)
    for tab in tabs:
        assert [e["data"]["unread"] for e in await tab.events(2)] == [1, 2]
    http = await sync_to_async(_client)(user)
    marked = await sync_to_async(http.post)(f"/api/notifications/{first.pk}/read/")
    assert marked.json() == {"marked": [first.pk], "unread": 1}
    for tab in tabs:
        event = await tab.expect("event")
        assert event["event"] == "notification.read"
        assert event["data"] == {"ids": [first.pk], "all": False, "unread": 1}
    everything = await sync_to_async(http.post)("/api/notifications/read-all/")
    assert everything.json()["unread"] == 0
    for tab in tabs:
        event = await tab.expect("event")
        assert (event["event"], event["data"]["all"], event["data"]["unread"]) == (
            "notification.read", True, 0)
    # Marking again changes nothing and publishes nothing.
    again = await sync_to_async(http.post)("/api/notifications/read-all/")
    assert again.json() == {"marked": [], "unread": 0}
    await tabs[0].send({"type": "ping", "id": 1})
    assert await tabs[0].expect("pong") == {"type": "pong", "id": 1}


def test_inbox_pages_and_filters(make_user):
    user, other = make_user(), make_user()
    notes = [_notify(user, n) for n in range(25)]
    theirs = _notify(other, 99)
    http = _client(user)
    page = http.get("/api/notifications/", {"limit": 10}).json()
    assert [i["title"] for i in page["items"]] == [f"note {n}" for n in range(24, 14, -1)]
    seen = [i["id"] for i in page["items"]]
    while page["next_before"] is not None:
        page = http.get("/api/notifications/", {"limit": 10,
                                                "before": page["next_before"]}).json()
        seen += [i["id"] for i in page["items"]]
    assert seen == [n.pk for n in reversed(notes)]
    http.post("/api/notifications/read/", {"ids": [notes[0].pk, notes[1].pk, theirs.pk]},
              content_type="application/json")
    unread = http.get("/api/notifications/", {"unread": "true", "limit": 100}).json()
    assert len(unread["items"]) == 23 and unread["unread"] == 23
    assert http.get("/api/notifications/unread-count/").json() == {"unread": 23}
    assert Notification.objects.get(pk=theirs.pk).read_at is None  # not yours: untouched
    assert http.post(f"/api/notifications/{theirs.pk}/read/").status_code == 404


def test_inbox_needs_sign_in_and_csrf(make_user):
    user = make_user()
    assert Client().get("/api/notifications/").status_code == 401
    response = _client(user, csrf=True).post("/api/notifications/read-all/")
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"


def test_bad_inbox_input_is_a_4xx(make_user):
    http = _client(make_user())
    assert http.get("/api/notifications/", {"limit": 0}).status_code == 422
    assert http.get("/api/notifications/", {"before": "x"}).status_code == 422
    bad = http.post("/api/notifications/read/", {"ids": "all"}, content_type="application/json")
    assert bad.status_code == 422 and bad.json()["code"] == "invalid"


def test_a_keyed_notification_is_created_once(make_user):
    user = make_user()
    first = notification_create(recipient=user, kind="k", title="t", key="once")
    second = notification_create(recipient=user, kind="k", title="t", key="once")
    assert first.pk == second.pk
    assert Notification.objects.filter(recipient=user).count() == 1


def test_finished_job_notifies_its_owner_once(celery_worker, make_user):
    from taskstream.jobs import job_start
    from taskstream.jobs.models import Job

    user = make_user()
    job = job_start(kind="demo.report", owner=user, params={"rows": 2, "row_seconds": 0})
    deadline = time.monotonic() + 30
    while not Notification.objects.filter(recipient=user).exists():
        assert time.monotonic() < deadline, "no notification for the finished job"
        time.sleep(0.1)
    note = Notification.objects.get(recipient=user)
    assert Job.objects.get(pk=job.pk).state == "succeeded"
    assert (note.kind, note.title, note.url) == ("job.succeeded", "Report is ready",
                                                 "/jobs/")
    assert note.data["job"] == str(job.pk)
    # A job kind that does not ask for it notifies nobody.
    other = job_start(kind="demo.slow", owner=user, params={"steps": 1, "step_seconds": 0})
    while Job.objects.get(pk=other.pk).state != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert Notification.objects.filter(recipient=user).count() == 1
