"""The database goes away for a few seconds under a real worker: no job is lost or rerun.

The worker reaches PostgreSQL through a small TCP proxy of the test's own. Stopping the
proxy cuts every connection and refuses new ones — what a database restart or fail-over
looks like to a worker — and starting it again on the same port brings the database back.

* a job whose message arrives while the database is away is not dropped: once it is
  back the job runs, once;
* a job running when the database goes away rides the outage out: same run (attempt 1),
  succeeded, with one terminal event.

SQLite has no connection to cut (a file is either there or not, and the test shares it),
so this runs on PostgreSQL only (``make test-services``).
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import connection

from taskstream.jobs import job_start
from taskstream.jobs.models import Job

pytestmark = [pytest.mark.django_db(transaction=True)]


class TcpProxy:
    """Forwards a local port to ``target``; ``stop()`` cuts and refuses, ``start()`` resumes."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self._listener: socket.socket | None = None
        self._links: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            links, self._links = self._links, set()
        for sock in links:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # stopped
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._links |= {client, upstream}
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def db_proxy() -> Iterator[TcpProxy]:
    if connection.vendor != "postgresql":
        pytest.skip("needs a database reached over TCP (make test-services)")
    settings = connection.settings_dict
    proxy = TcpProxy((settings.get("HOST") or "127.0.0.1", int(settings.get("PORT") or 5432)))
    proxy.start()
    yield proxy
    proxy.stop()


def wait_until(check: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result


def test_a_short_database_outage_loses_and_reruns_no_job(db_proxy: TcpProxy, server_env: Any,
                                                         start_worker: Any,
                                                         make_user: Any) -> None:
    url = urlsplit(server_env["DATABASE_URL"])
    via_proxy = urlunsplit(url._replace(netloc=f"{url.username or ''}@127.0.0.1:"
                                                f"{db_proxy.port}"))
    queue = f"dbout{secrets.token_hex(3)}"
    worker = start_worker(concurrency=2, DATABASE_URL=via_proxy, CELERY_TASK_DEFAULT_QUEUE=queue,
                          taskstream={"JOB_DB_RETRY_SECONDS": 60})
    user = make_user()
    log_start = worker.log.stat().st_size

    def met_the_outage(job: Job) -> bool:
        """Whether the worker logged a database error for ``job`` (by its id or task id)."""
        with worker.log.open("rb") as f:
            f.seek(log_start)
            lines = f.read().splitlines()
        names = (str(job.pk).encode(), job.celery_task_id.encode())
        return any(b"OperationalError" in line and any(n in line for n in names)
                   for line in lines)

    try:
        running = job_start(kind="demo.slow", owner=user, queue=queue,
                            params={"steps": 40, "step_seconds": 0.1})
        wait_until(lambda: Job.objects.filter(pk=running.pk, state="running",
                                              progress_current__gte=2).exists(),
                   "the first job to run")
        db_proxy.stop()  # the database restarts: connections cut, new ones refused
        waiting = job_start(kind="demo.slow", owner=user, queue=queue,
                            params={"steps": 1, "step_seconds": 0})
        # Both met the outage: the running one's writes and the new one's claim.
        wait_until(lambda: met_the_outage(running) and met_the_outage(waiting),
                   "the worker to meet the outage")
        db_proxy.start()
        for job in (running, waiting):
            wait_until(lambda job=job: Job.objects.filter(
                pk=job.pk, state__in=["succeeded", "failed", "cancelled"]).exists(),
                f"job {job.pk} to finish")
    finally:
        if db_proxy._listener is None:
            db_proxy.start()
        worker.stop()
    for job in (running, waiting):
        job.refresh_from_db()
        assert job.state == "succeeded", (job.error_type, job.error_message)
        assert job.attempt == 1  # not rerun: the running one rode it out, the other waited
