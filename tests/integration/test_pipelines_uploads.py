"""Uploads against a real server: what the request itself does with a hostile file."""

from __future__ import annotations

import json
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from taskstream.testing import ServerProcess
from tests.pipelines.cleanup import remove_pipeline_files  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def multipart(field: str, name: str, content: bytes) -> tuple[bytes, str]:
    boundary = secrets.token_hex(12)
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
            f"filename=\"{name}\"\r\nContent-Type: text/csv\r\n\r\n").encode()
    return body + content + f"\r\n--{boundary}--\r\n".encode(), \
        f"multipart/form-data; boundary={boundary}"


def test_a_crafted_upload_is_answered_at_once_and_the_server_stays_responsive(
        make_user: Any, session_cookie: Callable[[Any], str],
        start_server: Callable[..., ServerProcess]) -> None:
    # Quotes and newlines: csv.Sniffer backtracked on 64 KB of it for minutes, holding the
    # GIL, so the whole process (health checks, sockets) stopped with it.
    server = start_server()
    try:
        token = secrets.token_hex(16)
        body, content_type = multipart("file", "crafted.csv", b'"\n' * 32 * 1024)
        request = urllib.request.Request(
            f"{server.http_url}/api/pipelines/", data=body, method="POST",
            headers={"Content-Type": content_type, "X-CSRFToken": token,
                     "Cookie": f"{session_cookie(make_user())}; csrftoken={token}"})
        answer: dict[str, Any] = {}

        def send() -> None:
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    answer["status"], answer["body"] = response.status, response.read()
            except urllib.error.HTTPError as exc:
                with exc:
                    answer["status"], answer["body"] = exc.code, exc.read()
            except OSError as exc:  # a timeout: the server never answered
                answer["error"] = exc

        sender = threading.Thread(target=send)
        sender.start()
        health = 0
        while sender.is_alive() or not health:
            # Each check is answered while the upload is handled (generous bound: 10 s).
            with urllib.request.urlopen(f"{server.http_url}/healthz", timeout=10) as response:
                assert response.status == 200
            health += 1
            sender.join(0.05)
        assert "error" not in answer, answer
        # One column of odd text is still CSV: accepted; the worker reads it row by row.
        assert answer["status"] == 202, answer
        assert json.loads(answer["body"])["upload"]["size"] == 64 * 1024
    finally:
        server.stop()
