"""Clear answers while a backend is unreachable: 503 JSON with a code, or a page without
its live cursor, quickly, instead of a 500 after a timeout."""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from django.db import connection

from taskstream.jobs.models import Job
from taskstream.testing import RedisProcess, free_port

pytestmark = pytest.mark.django_db(transaction=True)


def get(url: str, cookie: str = "") -> tuple[int, dict[str, str], Any, float]:
    """Status, headers, body (JSON when it is) and seconds taken."""
    request = urllib.request.Request(url, headers={"Cookie": cookie, "Accept": "text/html"})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, headers, raw = exc.code, dict(exc.headers), exc.read()
    took = time.monotonic() - started
    try:
        body: Any = json.loads(raw)
    except ValueError:
        body = raw
    return status, headers, body, took


def unreachable_database_url(tmp_path: Any) -> str:
    if connection.vendor == "sqlite":
        return f"sqlite:///{tmp_path}/no-such-dir/db.sqlite3"
    return f"postgres://postgres@127.0.0.1:{free_port()}/test"  # nothing listens there


def test_an_unreachable_database_answers_503_json_with_a_code(start_server, tmp_path):
    server = start_server(DATABASE_URL=unreachable_database_url(tmp_path))
    for path in ("/api/jobs/", "/"):  # the API and a page: both read the session
        status, headers, body, took = get(server.http_url + path, cookie=f"sessionid={'a' * 32}")
        assert status == 503, (path, body)
        assert body["code"] == "database_unavailable"
        assert {k.lower(): v for k, v in headers.items()}["retry-after"] == "5"
        assert took < 5


def test_a_job_page_answers_without_its_cursor_while_redis_is_paused(start_server, make_user,
                                                                    session_cookie):
    redis = RedisProcess().start()
    try:
        server = start_server(REDIS_URL=redis.url)
        owner = make_user()
        job = Job.objects.create(owner=owner, kind="demo.slow")
        url = f"{server.http_url}/api/jobs/{job.pk}/"
        cookie = session_cookie(owner)
        status, _, live, _ = get(url, cookie)
        assert status == 200 and live["cursor"]
        assert redis.proc is not None
        os.kill(redis.proc.pid, signal.SIGSTOP)  # Redis hangs: connections open, no answers
        try:
            status, _, paused, took = get(url, cookie)
        finally:
            os.kill(redis.proc.pid, signal.SIGCONT)
        assert (status, paused["id"], paused["state"], paused["cursor"]) == (
            200, str(job.pk), "queued", None)
        assert took < 5
    finally:
        redis.close()
