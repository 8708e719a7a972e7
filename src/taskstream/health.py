"""Liveness and readiness probes: ``/healthz`` and ``/readyz``.

Mount them with ``path("", include("taskstream.health"))``.

* ``/healthz`` answers 200 while the process serves requests; it touches nothing else,
  so a slow database never gets a healthy process restarted.
* ``/readyz`` checks each backend a request may need - the database, the hub's Redis,
  the Celery broker - concurrently, each with a short timeout: 200 with every check,
  or 503 naming the ones that failed. Error details are shown only when DEBUG is on.

The check functions are also what ``example.devstack`` runs before it starts anything.
"""

from __future__ import annotations

import asyncio
import copy
import math
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import connections
from django.db.utils import load_backend
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from redis.cluster import RedisCluster

# Seconds each readiness check may take before it counts as failed.
CHECK_TIMEOUT = 3.0


def check_database(alias: str = "default", *, timeout: float = CHECK_TIMEOUT) -> None:
    """Raise unless database ``alias`` answers ``SELECT 1``.

    Uses a connection of its own, closed afterwards: the probe neither reuses a request
    thread's connection (which may be stale) nor leaves one open in a worker thread.
    """
    params = copy.deepcopy(connections[alias].settings_dict)
    if params["ENGINE"].endswith("postgresql"):
        params["OPTIONS"] = {**params.get("OPTIONS", {}), "connect_timeout": max(1, int(timeout))}
    wrapper = load_backend(params["ENGINE"]).DatabaseWrapper(params, alias)
    try:
        with wrapper.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        wrapper.close()


def check_redis(url: str | None = None, *, timeout: float = CHECK_TIMEOUT) -> None:
    """Raise unless the hub's Redis (or ``url``) answers PING."""
    if url is None:
        from taskstream.conf import conf

        url = conf.REDIS_URL
    from taskstream.hub.redis import is_cluster, plain_url

    client: Any
    if is_cluster(url):  # a Cluster: the seed node answers, and every slot has a primary
        client = RedisCluster.from_url(plain_url(url), socket_connect_timeout=timeout,
                                       socket_timeout=timeout)
    else:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout,
                                      socket_timeout=timeout)
    try:
        client.ping()
        if is_cluster(url):
            _require_sharded_pubsub(client)
    finally:
        client.close()


def _require_sharded_pubsub(client: Any) -> None:
    """Raise unless every primary runs Redis >= 7 (SPUBLISH/SSUBSCRIBE, the hub's fan-out
    on a Cluster)."""
    answer = client.info("server", target_nodes=RedisCluster.PRIMARIES)
    infos = [answer] if "redis_version" in answer else list(answer.values())
    for info in infos:
        version = str(info.get("redis_version", "0"))
        if int(version.split(".")[0]) < 7:
            raise redis.RedisError(f"the hub on a Redis Cluster needs Redis 7 or later "
                                   f"(sharded Pub/Sub); a primary runs {version}")


def check_broker(url: str | None = None, *, timeout: float = CHECK_TIMEOUT) -> None:
    """Raise unless the Celery broker (the current app's, or ``url``) accepts a connection."""
    from celery import current_app

    conn = (current_app.connection_for_write() if url is None
            else current_app.connection_for_write(url))
    conn.connect_timeout = timeout
    with conn:
        conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                              timeout=math.ceil(timeout))


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "redis": check_redis,
    "broker": check_broker,
}


def describe_error(exc: BaseException) -> str:
    """One line naming what went wrong, for logs and start-up messages."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


async def _run(name: str, check: Callable[[], None]) -> tuple[str, str | None]:
    try:
        # The checks block on sockets; threads keep the event loop serving meanwhile.
        await asyncio.wait_for(asyncio.to_thread(check), CHECK_TIMEOUT + 1)
    except Exception as exc:
        return name, describe_error(exc) if not isinstance(exc, TimeoutError) else "timed out"
    return name, None


@never_cache
@require_safe
async def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the process is up."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
async def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every backend answers, else 503 naming the ones that did not."""
    results = await asyncio.gather(*(_run(name, check) for name, check in CHECKS.items()))
    checks: dict[str, dict[str, Any]] = {}
    for name, error in results:
        checks[name] = {"ok": error is None}
        if error is not None and settings.DEBUG:
            checks[name]["error"] = error
    failed = [name for name, error in results if error is not None]
    body: dict[str, Any] = {"status": "unavailable" if failed else "ok", "checks": checks}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if failed else 200)


app_name = "taskstream-health"
urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
]
