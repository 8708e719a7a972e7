"""The hub's counters at ``/metrics``, summed over a server's two processes."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from prometheus_client.parser import text_string_to_metric_families

from taskstream.hub import apublish
from tests.conftest import SUITE_THROTTLES

TOKEN = "m" * 40
pytestmark = pytest.mark.django_db(transaction=True)


def scrape(url: str) -> dict[str, float]:
    request = urllib.request.Request(f"{url}/metrics",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    return {s.name: s.value for family in text_string_to_metric_families(text)
            for s in family.samples if not s.labels}


def until_closed(url: str, timeout: float = 10.0) -> dict[str, float]:
    """Scrape until the servers noticed the sockets closing (or time is up)."""
    deadline = time.monotonic() + timeout
    while (metrics := scrape(url))["taskstream_hub_connections"] and time.monotonic() < deadline:
        time.sleep(0.1)
    return metrics


async def test_connections_subscriptions_deliveries_replays_and_gaps(
        start_server, make_user, session_cookie, tmp_path: Path, connect):
    server = start_server(workers=2, PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
                          TASKSTREAM_JSON=json.dumps({**SUITE_THROTTLES,
                                                      "METRICS_TOKEN": TOKEN}))
    user = await sync_to_async(make_user)()
    cookie = await sync_to_async(session_cookie)(user)
    topic = f"user:{user.pk}"
    clients = [await connect(server, cookie=cookie) for _ in range(4)]
    cursor = (await clients[0].subscribe(topic))["cursor"]
    await apublish(topic, "note", {"n": 1})
    await clients[0].events(1)
    await clients[1].subscribe(topic, since=cursor)  # a replay of one event
    await clients[1].events(1)
    await clients[2].subscribe(topic, since="0-1-0")  # an epoch long gone: a gap
    assert (await clients[2].expect("gap"))["topic"] == topic
    await apublish(topic, "note", {"n": 2})
    for client in clients[:3]:
        await client.events(1)

    metrics = await asyncio.to_thread(scrape, server.http_url)
    # Four sockets on two processes (the uvicorn workers share the port): summed.
    assert metrics["taskstream_hub_connections"] == 4
    assert metrics["taskstream_hub_subscriptions"] == 3
    assert metrics["taskstream_events_delivered_total"] >= 4
    assert metrics["taskstream_replays_total"] == 2  # the gap was a replay that fell short
    assert metrics["taskstream_gaps_total"] == 1
    assert metrics["taskstream_slow_consumers_closed_total"] == 0

    for client in clients:
        await client.close()
    metrics = await asyncio.to_thread(until_closed, server.http_url)
    assert metrics["taskstream_hub_connections"] == 0
    assert metrics["taskstream_hub_subscriptions"] == 0
