"""The publishing side of the bench, as its own process (like a Celery worker would be).

``python -m bench.publisher hub|naive|floor --user ID`` prints ``ready``, then reads one JSON
command per line from stdin, ``{"count": N, "interval": S, "start": K}``, publishes
events ``n = K .. K+N-1`` (one every ``interval`` seconds on a fixed schedule, or as
fast as it can with 0) and answers one JSON line with how long the send loop took.
Every payload carries ``t`` = ``time.monotonic_ns()`` taken just before the publish
call; CLOCK_MONOTONIC is system-wide on Linux, so the client process can subtract it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any


def hub_publisher(user_id: int) -> Callable[[dict[str, Any]], None]:
    import django

    django.setup()
    from taskstream.hub import publish

    topic = f"user:{user_id}"

    def send(payload: dict[str, Any]) -> None:
        publish(topic, "bench", payload)

    return send


def naive_publisher(user_id: int) -> Callable[[dict[str, Any]], None]:
    from bench.naive.publisher import make_publisher

    publish = make_publisher()

    def send(payload: dict[str, Any]) -> None:
        publish(user_id, payload)

    return send


def floor_publisher(user_id: int) -> Callable[[dict[str, Any]], None]:
    """A plain Redis ``PUBLISH`` of the payload to the bare ASGI app (bench/floor.py)."""
    import os

    import redis

    from bench.floor import HOP_CHANNEL

    client = redis.Redis.from_url(os.environ["NAIVE_REDIS_URL"])

    def send(payload: dict[str, Any]) -> None:
        client.publish(HOP_CHANNEL, json.dumps(payload))

    return send


def run(send: Callable[[dict[str, Any]], None], count: int, interval: float, start: int,
        ) -> dict[str, Any]:
    began = time.monotonic()
    calls: list[float] = []
    for i in range(count):
        if interval:
            delay = began + i * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        t = time.monotonic_ns()
        send({"n": start + i, "t": t})
        calls.append(round((time.monotonic_ns() - t) / 1e6, 4))
    return {"sent": count, "send_s": round(time.monotonic() - began, 4), "call_ms": calls}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.publisher")
    parser.add_argument("target", choices=["hub", "naive", "floor"])
    parser.add_argument("--user", type=int, required=True)
    args = parser.parse_args()
    makers = {"hub": hub_publisher, "naive": naive_publisher, "floor": floor_publisher}
    send = makers[args.target](args.user)
    send({"n": -1, "t": time.monotonic_ns()})  # warm the connection (clients ignore n < 0)
    print("ready", flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        result = run(send, int(command["count"]), float(command.get("interval", 0)),
                     int(command.get("start", 0)))
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
