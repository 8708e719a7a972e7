"""``python -m bench.ops_dashboard``: the ops overview's event → screen latency.

A real ASGI server (``python -m taskstream.server``) and headless Chromium on the staff
overview (``/ops/``). The bench publishes ``monitor.summary`` on ``ops`` as the events
monitor does (ephemeral, the same data shape: the last hour read back from the database,
with its SVG chart) at ``--rate`` per second, each with a marker in its task count. In the
page a MutationObserver notes when the count's text changes and the next animation frame
after it (the frame that paints it), on the page's wall clock; the latency is that minus
the wall time just before ``publish()``. Same machine, same clock.

Database: a temporary SQLite file unless ``DATABASE_URL`` is set; Redis: an embedded one
unless ``REDIS_URL`` is set. Results: ``bench/results/ops-dashboard-<ts>.json``.

    python -m bench.ops_dashboard [--events 300] [--rate 5]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.stats import percentiles

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOG_DIR = ROOT / "var" / "bench"
MARK = 1_000_000  # task counts this high are the bench's markers

OBSERVE = """() => {
  window.__painted = {};
  const el = document.querySelector('[data-monitor="succeeded"]');
  new MutationObserver(() => {
    const text = el.textContent;
    const seen = performance.timeOrigin + performance.now();
    requestAnimationFrame(() => {
      window.__painted[text] = [seen, performance.timeOrigin + performance.now()];
    });
  }).observe(el, {childList: true, characterData: true, subtree: true});
}"""


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.ops_dashboard")
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--rate", type=float, default=5.0, help="summaries per second")
    args = parser.parse_args()

    from taskstream.devredis import RedisProcess

    redis = None
    if not os.environ.get("REDIS_URL"):
        redis = RedisProcess().start()
        os.environ["REDIS_URL"] = redis.url
    tmp = tempfile.TemporaryDirectory(prefix="bench-ops-dashboard-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp.name}/bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
    server = None
    try:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from taskstream.testing import ServerProcess

        LOG_DIR.mkdir(parents=True, exist_ok=True)
        server = ServerProcess("example.asgi:application", cwd=ROOT,
                               env={"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'src'}"},
                               log=LOG_DIR / "ops-dashboard-server.log").start()
        result = run(server.http_url, args.events, args.rate)
    finally:
        if server is not None:
            server.stop()
        if redis is not None:
            redis.close()
        tmp.cleanup()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"ops-dashboard-{stamp}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def staff_cookie() -> tuple[str, str]:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    user = get_user_model().objects.create_user(username=f"bench{time.time_ns()}",
                                                is_staff=True)
    client = Client()
    client.force_login(user)
    name = settings.SESSION_COOKIE_NAME
    return name, client.cookies[name].value


def fill_an_hour() -> None:
    """A busy hour, so the summary is full size: every minute with successes and failures
    (120 bars and the rate line in its SVG), and 8 workers."""
    from datetime import timedelta

    from django.utils import timezone

    from taskstream.ops.models import TaskMinute, WorkerRecord

    now = timezone.now().replace(second=0, microsecond=0)
    TaskMinute.objects.bulk_create([
        TaskMinute(minute=now - timedelta(minutes=m), received=20_000 + m, started=20_000 + m,
                   succeeded=19_000 + 37 * m, failed=100 + 13 * m, runtime_total=190.0)
        for m in range(60)])
    WorkerRecord.objects.bulk_create([
        WorkerRecord(hostname=f"celery@bench{i}", online=True, first_seen_at=now,
                     online_at=now, heartbeat_at=timezone.now() + timedelta(hours=1),
                     concurrency=8, active=3, processed=10_000) for i in range(8)])


def run(url: str, events: int, rate: float) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from taskstream.hub import publish
    from taskstream.ops.selectors import monitor_overview

    name, value = staff_cookie()
    fill_an_hour()
    base = monitor_overview()
    published: dict[str, float] = {}

    def send(mark: str, data: dict[str, Any]) -> None:
        published[mark] = time.time() * 1000
        publish("ops", "monitor.summary", data, ephemeral=True)

    with ThreadPoolExecutor(1) as pool, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                     args=["--no-sandbox", "--disable-gpu"])
        context = browser.new_context(viewport={"width": 1100, "height": 900})
        context.add_cookies([{"name": name, "value": value, "url": url, "httpOnly": True}])
        page = context.new_page()
        page.goto(f"{url}/ops/")
        page.wait_for_selector("#hub-state[data-state=open]", timeout=30_000)
        page.evaluate(OBSERVE)
        interval = 1.0 / rate
        next_at = time.monotonic()
        for i in range(1, events + 1):
            data = {**base, "tasks": {**base["tasks"], "succeeded": MARK + i},
                    "events": i, "dropped": 0}
            # From a thread of its own: Playwright's sync API runs an event loop in this one.
            pool.submit(send, str(MARK + i), data).result()
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))
        page.wait_for_function(f"() => window.__painted['{MARK + events}'] !== undefined",
                               timeout=30_000)
        painted: dict[str, list[float]] = page.evaluate("() => window.__painted")
        browser.close()
    to_dom = [painted[k][0] - published[k] for k in published if k in painted]
    to_frame = [painted[k][1] - published[k] for k in published if k in painted]
    return {
        "events": events, "rate_per_s": rate, "shown": len(to_frame),
        "summary_bytes": len(json.dumps({**base, "events": 0, "dropped": 0})),
        "publish_to_dom_ms": percentiles(to_dom),
        "publish_to_painted_frame_ms": percentiles(to_frame),
    }


if __name__ == "__main__":
    main()
