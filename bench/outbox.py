"""``python -m bench.outbox``: what the outbox costs a write, beside publishing on commit.

One process, one change per iteration (a chat message INSERT), timed from the start of
the transaction until its event is in Redis:

* ``on_commit``: the change, then ``transaction.on_commit(publish)`` (what rooms did);
* ``outbox``: the change and ``outbox_publish`` in one transaction, then the fast path
  (the topic's unsent rows: SELECT, one pipelined publish, DELETE).

The two alternate, iteration by iteration, so machine noise hits both alike. SQLite in a
temporary file and an embedded Redis unless ``DATABASE_URL`` / ``REDIS_URL`` are set.

    python -m bench.outbox [--n 500]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stats import percentiles

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox")
    parser.add_argument("--n", type=int, default=500, help="changes per variant")
    args = parser.parse_args()

    from taskstream.devredis import RedisProcess

    redis = None
    if not os.environ.get("REDIS_URL"):
        redis = RedisProcess().start()
        os.environ["REDIS_URL"] = redis.url
    tmp = tempfile.TemporaryDirectory(prefix="bench-outbox-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp.name}/bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        result = run(args.n)
    finally:
        if redis is not None:
            redis.close()
        tmp.cleanup()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"outbox-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def run(n: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from taskstream.hub import publish
    from taskstream.outbox import outbox_publish
    from taskstream.rooms.models import Message, Room
    from taskstream.rooms.selectors import message_payload

    user = get_user_model().objects.create_user(username="bench", password="-")
    room = Room.objects.create(slug="bench", name="Bench", created_by=user)

    def on_commit() -> None:
        with transaction.atomic():
            message = Message.objects.create(room=room, author=user, body="hello")
            payload = message_payload(message)
            transaction.on_commit(lambda: publish(room.topic, "message.created", payload))

    def outbox() -> None:
        with transaction.atomic():
            message = Message.objects.create(room=room, author=user, body="hello")
            outbox_publish(topic=room.topic, event="message.created",
                           data=message_payload(message))

    variants = {"on_commit": on_commit, "outbox": outbox}
    for variant in variants.values():  # warm up connections, scripts, caches
        for _ in range(20):
            variant()
    times: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(n):
        for name, variant in variants.items():
            started, started_cpu = time.perf_counter(), time.thread_time()
            variant()
            times[name].append((time.perf_counter() - started) * 1e6)
            cpu[name].append((time.thread_time() - started_cpu) * 1e6)
    wall = {name: percentiles(values) for name, values in times.items()}
    cpu_median = {name: percentiles(values)["50"] or 0.0 for name, values in cpu.items()}
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": connection.vendor, "n": n, "load_average": os.getloadavg()[0],
        # Wall time from the start of the transaction to the event in Redis (µs).
        "us_per_change": wall,
        # CPU of this process per change (µs, median): what a loaded machine stretches.
        "cpu_us_per_change": cpu_median,
        "added_us_median": round((wall["outbox"]["50"] or 0) - (wall["on_commit"]["50"] or 0), 1),
        "added_cpu_us_median": round(cpu_median["outbox"] - cpu_median["on_commit"], 1),
    }


if __name__ == "__main__":
    main()
