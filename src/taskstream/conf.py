"""Typed access to the one ``TASKSTREAM`` settings dict, with documented defaults.

Read lazily on every access, so ``override_settings(TASKSTREAM=...)`` works in tests.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULTS: dict[str, Any] = {
    # Redis that holds the hub's event log and carries live fan-out. Required.
    "REDIS_URL": None,
    # Prefix of every Redis key and Pub/Sub channel taskstream uses.
    "KEY_PREFIX": "ts:",
    # Origins allowed to open /ws/ besides the page's own ("https://app.example.com").
    "ALLOWED_ORIGINS": [],
    # Retained window of each topic's log: this many events and this many seconds.
    "LOG_MAXLEN": 1000,
    "LOG_MAX_AGE": 86400,
    # Seconds between keep-alives; a peer silent for two of them is closed.
    "HEARTBEAT": 20,
    # Largest client frame accepted (bytes); a bigger one closes the socket with 1009.
    "MAX_FRAME_BYTES": 65536,
    # Largest serialized ``data`` of a published event (bytes).
    "MAX_EVENT_BYTES": 65536,
    # Topics one socket may hold at once.
    "MAX_SUBSCRIPTIONS": 100,
    # Token bucket over client frames per socket: refill rate and burst size.
    "RATE_PER_SECOND": 20.0,
    "RATE_BURST": 60,
    # ``rate_limited`` answers a socket may collect before it is closed with 4429.
    "RATE_STRIKES": 20,
    # Bytes a slow socket may have waiting before it is closed with 4408.
    "OUTBOUND_QUEUE_BYTES": 1_048_576,
    # Lifetime of tokens from POST /api/ws-token/ (seconds).
    "TOKEN_MAX_AGE": 60,
    # Sockets one signed-in user may hold open on one server process.
    "MAX_CONNECTIONS_PER_USER": 20,
    # Rooms: longest message (characters); messages one user may send per window (seconds),
    # across every process; page size of the history API.
    "ROOM_MESSAGE_MAX_LENGTH": 4000,
    "ROOM_MESSAGE_RATE": 10,
    "ROOM_MESSAGE_RATE_WINDOW": 10,
    "ROOM_HISTORY_PAGE": 50,
    # Seconds a presence entry lives unless its process refreshes it (a dead process's
    # sockets leave the list after at most this long), and the least seconds between two
    # typing events of one user in one room.
    "ROOM_PRESENCE_TTL": 45,
    "ROOM_TYPING_INTERVAL": 2.0,
    # Notifications: inbox page size; the site name in transactional e-mail.
    "NOTIFICATIONS_PAGE": 20,
    "SITE_NAME": "taskstream",
    # Jobs: least seconds between two progress events of one job (the last value is always
    # delivered); seconds between heartbeats of a running job; a running job whose heartbeat
    # is older than JOB_HEARTBEAT_TIMEOUT is re-queued by the reaper, which beat runs every
    # JOB_REAPER_INTERVAL seconds; page size of GET /api/jobs/.
    "JOB_PROGRESS_INTERVAL": 0.1,
    "JOB_HEARTBEAT_INTERVAL": 10.0,
    "JOB_HEARTBEAT_TIMEOUT": 60.0,
    "JOB_REAPER_INTERVAL": 30.0,
    "JOB_PAGE_SIZE": 20,
    # Pipelines: largest upload (bytes, enforced while it streams in); rows per chunk;
    # most columns a CSV may have; retries of a step's transient errors, the first after
    # PIPELINE_RETRY_BACKOFF seconds, doubling; the STORAGES alias uploads and reports use.
    "PIPELINE_MAX_UPLOAD_BYTES": 20 * 1024 * 1024,
    "PIPELINE_CHUNK_ROWS": 10_000,
    "PIPELINE_MAX_COLUMNS": 100,
    "PIPELINE_MAX_RETRIES": 3,
    "PIPELINE_RETRY_BACKOFF": 1.0,
    "PIPELINE_STORAGE": "default",
    # Periodic tasks: days finished jobs, read notifications, uploads and run history are
    # kept; seconds between purges; the UTC hour of the daily digest e-mail; seconds
    # between missed-run checks and the grace a schedule gets past its interval; seconds
    # the single beat's lock lives unless renewed (a standby beat takes over after it).
    "RETENTION_DAYS": 30,
    "PURGE_INTERVAL": 3600.0,
    "DIGEST_HOUR": 7,
    "PERIODIC_CHECK_INTERVAL": 60.0,
    "PERIODIC_GRACE": 60.0,
    "BEAT_LOCK_TTL": 30.0,
}


class TaskstreamSettings:
    """Attribute access to ``settings.TASKSTREAM`` over :data:`DEFAULTS`."""

    def _get(self, name: str) -> Any:
        user = getattr(settings, "TASKSTREAM", {}) or {}
        return user.get(name, DEFAULTS[name])

    @property
    def REDIS_URL(self) -> str:
        url = self._get("REDIS_URL")
        if not url:
            raise ImproperlyConfigured('TASKSTREAM["REDIS_URL"] is required (redis://host:port/db).')
        return str(url)

    @property
    def KEY_PREFIX(self) -> str:
        return str(self._get("KEY_PREFIX"))

    @property
    def ALLOWED_ORIGINS(self) -> list[str]:
        return list(self._get("ALLOWED_ORIGINS"))

    @property
    def LOG_MAXLEN(self) -> int:
        return int(self._get("LOG_MAXLEN"))

    @property
    def LOG_MAX_AGE(self) -> int:
        return int(self._get("LOG_MAX_AGE"))

    @property
    def HEARTBEAT(self) -> float:
        return float(self._get("HEARTBEAT"))

    @property
    def MAX_FRAME_BYTES(self) -> int:
        return int(self._get("MAX_FRAME_BYTES"))

    @property
    def MAX_EVENT_BYTES(self) -> int:
        return int(self._get("MAX_EVENT_BYTES"))

    @property
    def MAX_SUBSCRIPTIONS(self) -> int:
        return int(self._get("MAX_SUBSCRIPTIONS"))

    @property
    def RATE_PER_SECOND(self) -> float:
        return float(self._get("RATE_PER_SECOND"))

    @property
    def RATE_BURST(self) -> int:
        return int(self._get("RATE_BURST"))

    @property
    def RATE_STRIKES(self) -> int:
        return int(self._get("RATE_STRIKES"))

    @property
    def OUTBOUND_QUEUE_BYTES(self) -> int:
        return int(self._get("OUTBOUND_QUEUE_BYTES"))

    @property
    def TOKEN_MAX_AGE(self) -> int:
        return int(self._get("TOKEN_MAX_AGE"))

    @property
    def MAX_CONNECTIONS_PER_USER(self) -> int:
        return int(self._get("MAX_CONNECTIONS_PER_USER"))

    @property
    def ROOM_MESSAGE_MAX_LENGTH(self) -> int:
        return int(self._get("ROOM_MESSAGE_MAX_LENGTH"))

    @property
    def ROOM_MESSAGE_RATE(self) -> int:
        return int(self._get("ROOM_MESSAGE_RATE"))

    @property
    def ROOM_MESSAGE_RATE_WINDOW(self) -> float:
        return float(self._get("ROOM_MESSAGE_RATE_WINDOW"))

    @property
    def ROOM_HISTORY_PAGE(self) -> int:
        return int(self._get("ROOM_HISTORY_PAGE"))

    @property
    def ROOM_PRESENCE_TTL(self) -> float:
        return float(self._get("ROOM_PRESENCE_TTL"))

    @property
    def ROOM_TYPING_INTERVAL(self) -> float:
        return float(self._get("ROOM_TYPING_INTERVAL"))

    @property
    def NOTIFICATIONS_PAGE(self) -> int:
        return int(self._get("NOTIFICATIONS_PAGE"))

    @property
    def SITE_NAME(self) -> str:
        return str(self._get("SITE_NAME"))

    @property
    def JOB_PROGRESS_INTERVAL(self) -> float:
        return float(self._get("JOB_PROGRESS_INTERVAL"))

    @property
    def JOB_HEARTBEAT_INTERVAL(self) -> float:
        return float(self._get("JOB_HEARTBEAT_INTERVAL"))

    @property
    def JOB_HEARTBEAT_TIMEOUT(self) -> float:
        return float(self._get("JOB_HEARTBEAT_TIMEOUT"))

    @property
    def JOB_REAPER_INTERVAL(self) -> float:
        return float(self._get("JOB_REAPER_INTERVAL"))

    @property
    def JOB_PAGE_SIZE(self) -> int:
        return int(self._get("JOB_PAGE_SIZE"))

    @property
    def PIPELINE_MAX_UPLOAD_BYTES(self) -> int:
        return int(self._get("PIPELINE_MAX_UPLOAD_BYTES"))

    @property
    def PIPELINE_CHUNK_ROWS(self) -> int:
        return int(self._get("PIPELINE_CHUNK_ROWS"))

    @property
    def PIPELINE_MAX_COLUMNS(self) -> int:
        return int(self._get("PIPELINE_MAX_COLUMNS"))

    @property
    def PIPELINE_MAX_RETRIES(self) -> int:
        return int(self._get("PIPELINE_MAX_RETRIES"))

    @property
    def PIPELINE_RETRY_BACKOFF(self) -> float:
        return float(self._get("PIPELINE_RETRY_BACKOFF"))

    @property
    def PIPELINE_STORAGE(self) -> str:
        return str(self._get("PIPELINE_STORAGE"))

    @property
    def RETENTION_DAYS(self) -> int:
        return int(self._get("RETENTION_DAYS"))

    @property
    def PURGE_INTERVAL(self) -> float:
        return float(self._get("PURGE_INTERVAL"))

    @property
    def DIGEST_HOUR(self) -> int:
        return int(self._get("DIGEST_HOUR"))

    @property
    def PERIODIC_CHECK_INTERVAL(self) -> float:
        return float(self._get("PERIODIC_CHECK_INTERVAL"))

    @property
    def PERIODIC_GRACE(self) -> float:
        return float(self._get("PERIODIC_GRACE"))

    @property
    def BEAT_LOCK_TTL(self) -> float:
        return float(self._get("BEAT_LOCK_TTL"))


conf = TaskstreamSettings()
