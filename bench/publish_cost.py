"""Redis-side cost of the publish script at two git revisions, on one embedded Redis.

    python -m bench.publish_cost [--before REV] [--after REV] [--events N]

Loads ``PUBLISH_LUA`` (and the ``publish_args`` shape) of each revision's
``src/taskstream/hub/log.py``, publishes N events per round to one topic with each,
alternating rounds, and reads Redis's own ``INFO commandstats`` (µs per EVALSHA): the
script's cost without the client, the network or the scheduler's noise. Writes
``bench/results/publish-cost-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from datetime import UTC, datetime
from typing import Any

import django

from bench.harness import ROOT


def _module(rev: str) -> types.ModuleType:
    text = subprocess.run(["git", "show", f"{rev}:src/taskstream/hub/log.py"], cwd=ROOT,
                          check=True, capture_output=True, text=True).stdout
    module = types.ModuleType(f"log_{rev.replace('~', '_')}")
    sys.modules[module.__name__] = module  # its dataclasses look themselves up there
    exec(compile(text, f"{rev}:log.py", "exec"), module.__dict__)
    from taskstream.hub import keys

    # Older revisions name keys this one no longer has (the global epoch key).
    module.keys = types.SimpleNamespace(  # type: ignore[attr-defined]
        **{name: getattr(keys, name) for name in dir(keys) if not name.startswith("_")},
        epoch_key=lambda: "cost:epoch")
    return module


def _usec_per_call(client: Any) -> tuple[int, float]:
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), float(stats.get("usec", 0))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.publish_cost")
    parser.add_argument("--before", default="HEAD~1")
    parser.add_argument("--after", default="HEAD")
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    from django.conf import settings

    from taskstream.devredis import RedisProcess

    redis_server = RedisProcess().start()
    settings.configure(TASKSTREAM={"REDIS_URL": redis_server.url, "KEY_PREFIX": "cost:"})
    django.setup()
    import redis

    from taskstream.hub.redis import script

    client = redis.Redis.from_url(redis_server.url)
    revs = {"before": args.before, "after": args.after}
    modules = {name: _module(rev) for name, rev in revs.items()}
    totals = {name: [0, 0.0] for name in revs}
    try:
        for _ in range(args.rounds):
            for name, log in modules.items():
                topic = f"user:{name}"
                calls0, usec0 = _usec_per_call(client)
                for n in range(args.events):
                    script_keys, argv = log.publish_args('"t"', '"tick"', json.dumps({"n": n}),
                                                         "2026-01-01T00:00:00.000Z", topic)
                    script(client, log.PUBLISH_LUA)(keys=script_keys, args=argv)
                calls1, usec1 = _usec_per_call(client)
                totals[name][0] += calls1 - calls0
                totals[name][1] += usec1 - usec0
    finally:
        redis_server.close()
    result = {
        "bench": "publish-cost", "ts": datetime.now(UTC).isoformat(timespec="seconds"),
        "revisions": revs, "events_per_round": args.events, "rounds": args.rounds,
        "usec_per_publish": {name: round(usec / calls, 3) for name, (calls, usec)
                             in totals.items()},
    }
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out = ROOT / "bench" / "results" / f"publish-cost-{stamp}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["usec_per_publish"]), f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
