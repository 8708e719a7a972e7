"""Request bodies are refused while they stream in, against a real server over raw sockets.

"Read" is what the server process read from its sockets (``rchar`` in /proc/<pid>/io),
so a test fails if the server swallows a body before answering, whatever the client's
kernel buffers hold.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from taskstream.testing import ServerProcess

pytestmark = pytest.mark.django_db(transaction=True)

MB = 1024 * 1024


def server_read_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/<pid>/io")


class Answer:
    def __init__(self, status: int, body: dict[str, Any], sent: int, read: int) -> None:
        self.status, self.body, self.sent, self.read = status, body, sent, read


def post_raw(server: ServerProcess, path: str, *, offer: int, chunked: bool,
             declare: int | None = None, cookie: str = "", send_body: bool = True,
             timeout: float = 30.0) -> Answer:
    """POST up to ``offer`` bytes as fast as the server takes them, stop at its answer."""
    assert server.proc is not None
    pid = server.proc.pid
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if cookie:
        head.append(f"Cookie: {cookie}")
    head.append("Transfer-Encoding: chunked" if chunked
                else f"Content-Length: {declare if declare is not None else offer}")
    before = server_read_bytes(pid)
    answered = threading.Event()
    raw: list[bytes] = []

    def read() -> None:
        try:
            while chunk := sock.recv(65536):
                raw.append(chunk)
                if b"\r\n\r\n" in b"".join(raw):
                    answered.set()
        except OSError:
            pass
        answered.set()

    reader = threading.Thread(target=read, daemon=True)
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    reader.start()
    sent = 0
    block = b"x" * 65536
    try:
        while send_body and sent < offer and not answered.is_set():
            sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
            sent += len(block)
        if send_body and chunked and not answered.is_set():
            sock.sendall(b"0\r\n\r\n")
    except OSError:  # the server closed the connection after answering
        pass
    reader.join(timeout)
    sock.close()
    data = b"".join(raw)
    assert data, f"no answer from the server to POST {path}"
    head_bytes, _, body = data.partition(b"\r\n\r\n")
    status = int(head_bytes.split(b" ", 2)[1])
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        parsed = {"raw": body[:200].decode(errors="replace")}
    return Answer(status, parsed, sent, server_read_bytes(pid) - before)


def test_anonymous_chunked_body_to_healthz_is_cut_off(hub_server: ServerProcess) -> None:
    answer = post_raw(hub_server, "/healthz", offer=64 * MB, chunked=True)
    assert answer.status == 413 and answer.body["code"] == "too_large", answer.body
    # Without a session: at most ANONYMOUS_MAX_BODY_BYTES (64 KiB), not the 64 MB offered.
    assert answer.read < MB, answer.read


def test_declared_length_over_the_limit_is_refused_before_reading(
        hub_server: ServerProcess) -> None:
    answer = post_raw(hub_server, "/healthz", offer=4 * MB, declare=1024 * MB, chunked=False)
    assert answer.status == 413 and answer.body["code"] == "too_large"
    assert answer.read < MB, answer.read


def test_unauthenticated_api_write_is_refused_before_its_body(
        hub_server: ServerProcess) -> None:
    answer = post_raw(hub_server, "/api/jobs/", offer=16 * MB, declare=16 * MB, chunked=False)
    assert answer.status == 401 and answer.body["code"] == "unauthenticated"
    assert answer.read < MB, answer.read
    answer = post_raw(hub_server, "/api/pipelines/", offer=64 * MB, chunked=True)
    assert answer.status == 401 and answer.body["code"] == "unauthenticated"
    assert answer.read < MB, answer.read


def test_signed_in_json_body_over_the_limit_is_413(
        hub_server: ServerProcess, make_user: Callable[..., Any],
        session_cookie: Callable[[Any], str]) -> None:
    cookie = session_cookie(make_user())
    for chunked in (False, True):
        answer = post_raw(hub_server, "/api/jobs/", offer=16 * MB, chunked=chunked,
                          cookie=cookie)
        assert answer.status == 413 and answer.body["code"] == "too_large", answer.body
        # MAX_BODY_BYTES (2.5 MB) and what was in flight, not the 16 MB offered.
        assert answer.read < 4 * MB, answer.read


def test_upload_gets_its_own_allowance_and_is_cut_off_there(
        hub_server: ServerProcess, make_user: Callable[..., Any],
        session_cookie: Callable[[Any], str]) -> None:
    cookie = session_cookie(make_user())
    answer = post_raw(hub_server, "/api/pipelines/", offer=64 * MB, chunked=True, cookie=cookie)
    assert answer.status == 413 and answer.body["code"] == "too_large", answer.body
    # PIPELINE_MAX_UPLOAD_BYTES (20 MB) plus what was in flight, not the 64 MB offered.
    assert 20 * MB < answer.read < 23 * MB, answer.read
    answer = post_raw(hub_server, "/api/pipelines/", offer=MB, declare=150 * MB, chunked=False,
                      cookie=cookie)
    assert answer.status == 413 and answer.read < MB


def test_a_body_that_never_comes_times_out(start_server: Callable[..., ServerProcess],
                                           make_user: Callable[..., Any],
                                           session_cookie: Callable[[Any], str]) -> None:
    server = start_server(TASKSTREAM_JSON='{"BODY_TIMEOUT": 1}')
    answer = post_raw(server, "/api/jobs/", offer=100, chunked=False, send_body=False,
                      cookie=session_cookie(make_user()), timeout=15)
    assert answer.status == 408 and answer.body["code"] == "timeout", answer.body
