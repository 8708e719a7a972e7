"""taskstream.testing.HubCommunicator and the plugin's fixtures, against the real hub app in
this process: real Redis, real sessions, no server, no daphne, no Host header to set."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from taskstream.hub import apublish
from taskstream.hub.auth import make_token
from taskstream.testing import HubClosed, HubCommunicator, HubError

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="alice", password="pw-alice")


def test_neither_daphne_nor_a_server_is_needed() -> None:
    assert importlib.util.find_spec("daphne") is None  # the suite's venv has none


async def test_a_signed_in_user_receives_what_is_published_and_replays_from_a_cursor(
        taskstream_hub: Any, alice: Any) -> None:
    hub = await taskstream_hub(user=alice)
    assert hub.welcome["user"] == alice.pk
    topic = f"user:{alice.pk}"
    subscribed = await hub.subscribe(topic)
    first = await apublish(topic, "note", {"n": 1})
    await apublish(topic, "note", {"n": 2})
    frames = await hub.receive_events(2, topic)
    assert [(f["event"], f["data"]["n"]) for f in frames] == [("note", 1), ("note", 2)]
    assert frames[0]["cursor"] == first

    again = await taskstream_hub(user=alice)
    await again.subscribe(topic, cursor=subscribed["cursor"])  # both, replayed
    assert [f["data"]["n"] for f in await again.receive_events(2, topic)] == [1, 2]
    again2 = await taskstream_hub(user=alice)
    await again2.subscribe(topic, cursor=first)  # only what came after the first
    assert (await again2.receive_event(topic))["data"]["n"] == 2
    assert await again2.receive_nothing()


async def test_anonymous_sockets_are_refused_protected_topics(taskstream_hub: Any,
                                                              alice: Any) -> None:
    hub = await taskstream_hub()
    assert hub.welcome["user"] is None
    with pytest.raises(HubError) as refused:
        await hub.subscribe(f"user:{alice.pk}")
    assert refused.value.code == "forbidden"
    with pytest.raises(HubError) as unknown:
        await hub.subscribe("nosuchkind:1")
    assert unknown.value.code == "unknown_topic"
    assert (await hub.ping())["type"] == "pong"  # the socket stays open


async def test_a_token_signs_the_socket_in(taskstream_hub: Any, alice: Any) -> None:
    token = await sync_to_async(make_token)(alice)
    hub = await taskstream_hub(token=token)
    assert hub.welcome["user"] == alice.pk
    await hub.subscribe(f"user:{alice.pk}")


async def test_a_scope_user_as_channels_auth_middleware_sets_it(taskstream_hub: Any,
                                                                  alice: Any) -> None:
    hub = await taskstream_hub(scope={"user": alice}, origin=None)
    assert hub.welcome["user"] == alice.pk
    await hub.subscribe(f"user:{alice.pk}")


async def test_the_origin_check_still_holds(taskstream_redis: str, alice: Any) -> None:
    with pytest.raises(HubClosed) as closed:
        await HubCommunicator(user=alice, origin="http://evil.example").connect()
    assert closed.value.code == 403
    with pytest.raises(HubClosed):
        await HubCommunicator(host="not-allowed.example").connect()


async def test_the_projects_own_asgi_application_and_path(taskstream_hub: Any,
                                                          alice: Any) -> None:
    hub = await taskstream_hub(user=alice, application="example.asgi:application")
    assert hub.welcome["user"] == alice.pk
    with pytest.raises(HubClosed) as closed:
        await taskstream_hub(application="example.asgi:application", path="/elsewhere/")
    assert closed.value.code == 403


async def test_client_publish_through_a_room_reaches_the_other_member(
        taskstream_hub: Any, alice: Any, django_user_model: Any) -> None:
    from taskstream.rooms.services import room_create

    bob = await sync_to_async(django_user_model.objects.create_user)(username="bob",
                                                                     password="pw-bob")
    await sync_to_async(room_create)(slug="team", name="Team", creator=alice,
                                     is_private=True, members=[bob])
    alice_hub = await taskstream_hub(user=alice)
    bob_hub = await taskstream_hub(user=bob)
    for hub in (alice_hub, bob_hub):
        await hub.subscribe("room:team")
    cursor = await alice_hub.publish("room:team", "message", {"body": "hi bob"})
    got = await bob_hub.receive_event("room:team", "message.created")
    assert got["data"]["body"] == "hi bob" and got["cursor"] == cursor
    with pytest.raises(HubError) as refused:
        await bob_hub.publish("room:team", "message", {"body": ""})
    assert refused.value.code == "bad_frame"


async def test_receive_event_keeps_the_frames_it_steps_over(taskstream_hub: Any,
                                                            alice: Any) -> None:
    hub = await taskstream_hub(user=alice)
    topic = f"user:{alice.pk}"
    await hub.subscribe(topic)
    await apublish(topic, "first", {})
    await apublish(topic, "second", {})
    assert (await hub.receive_event(event="second"))["event"] == "second"
    assert (await hub.receive())["event"] == "first"


async def test_eager_jobs_publish_their_states_to_the_hub(taskstream_hub: Any,
                                                         taskstream_eager: Any,
                                                         alice: Any) -> None:
    from taskstream.jobs import job_start

    hub = await taskstream_hub(user=alice)
    await hub.subscribe(f"user:{alice.pk}")
    job = await sync_to_async(job_start)(kind="demo.noop", owner=alice, params={"updates": 3})
    names = []
    while not names or names[-1] != "job.succeeded":
        frame = await hub.receive_event(f"user:{alice.pk}")
        assert frame["data"]["id"] == str(job.pk)
        names.append(frame["event"])
    assert names[:2] == ["job.created", "job.started"]
    assert frame["data"]["progress"]["current"] == 3
