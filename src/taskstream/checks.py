"""System checks ``taskstream.E001``…: every setting is validated at start-up."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, register

from taskstream.conf import DEFAULTS

_POSITIVE_INTS = {
    "LOG_MAXLEN": "E003",
    "LOG_MAX_AGE": "E004",
    "MAX_FRAME_BYTES": "E005",
    "MAX_EVENT_BYTES": "E006",
    "MAX_SUBSCRIPTIONS": "E007",
    "RATE_BURST": "E008",
    "RATE_STRIKES": "E009",
    "OUTBOUND_QUEUE_BYTES": "E010",
    "TOKEN_MAX_AGE": "E011",
    "MAX_CONNECTIONS_PER_USER": "E016",
    "ROOM_MESSAGE_MAX_LENGTH": "E050",
    "ROOM_MESSAGE_RATE": "E051",
    "ROOM_HISTORY_PAGE": "E052",
    "NOTIFICATIONS_PAGE": "E056",
    "JOB_PAGE_SIZE": "E024",
    "PIPELINE_MAX_UPLOAD_BYTES": "E060",
    "PIPELINE_CHUNK_ROWS": "E061",
    "PIPELINE_MAX_COLUMNS": "E062",
    "PIPELINE_MAX_RETRIES": "E063",
    "RETENTION_DAYS": "E070",
}
_POSITIVE_NUMBERS = {"HEARTBEAT": "E012", "RATE_PER_SECOND": "E013",
                     "ROOM_MESSAGE_RATE_WINDOW": "E053", "ROOM_PRESENCE_TTL": "E054",
                     "ROOM_TYPING_INTERVAL": "E055",
                     "JOB_PROGRESS_INTERVAL": "E020", "JOB_HEARTBEAT_INTERVAL": "E021",
                     "JOB_HEARTBEAT_TIMEOUT": "E022", "JOB_REAPER_INTERVAL": "E023",
                     "PIPELINE_RETRY_BACKOFF": "E064", "PURGE_INTERVAL": "E071",
                     "PERIODIC_CHECK_INTERVAL": "E072", "PERIODIC_GRACE": "E073",
                     "BEAT_LOCK_TTL": "E074"}


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors: list[Error] = []
    user = getattr(settings, "TASKSTREAM", {})
    if not isinstance(user, dict):
        return [Error("TASKSTREAM must be a dict.", id="taskstream.E000")]
    unknown = sorted(set(user) - set(DEFAULTS))
    if unknown:
        errors.append(Error(f"Unknown TASKSTREAM settings: {', '.join(unknown)}.",
                            hint=f"Known: {', '.join(sorted(DEFAULTS))}.", id="taskstream.E014"))
    values = {**DEFAULTS, **user}
    url = values["REDIS_URL"]
    if not isinstance(url, str) or urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        errors.append(Error('TASKSTREAM["REDIS_URL"] must be a redis://, rediss:// or unix:// URL.',
                            id="taskstream.E001"))
    origins = values["ALLOWED_ORIGINS"]
    if not isinstance(origins, list | tuple) or not all(
        isinstance(o, str) and (o == "*" or urlsplit(o).scheme in ("http", "https"))
        for o in origins
    ):
        errors.append(Error('TASKSTREAM["ALLOWED_ORIGINS"] must be a list of "scheme://host[:port]".',
                            id="taskstream.E002"))
    for name, code in _POSITIVE_INTS.items():
        value = values[name]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            errors.append(Error(f'TASKSTREAM["{name}"] must be a positive integer.',
                                id=f"taskstream.{code}"))
    for name, code in _POSITIVE_NUMBERS.items():
        value = values[name]
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            errors.append(Error(f'TASKSTREAM["{name}"] must be a positive number.',
                                id=f"taskstream.{code}"))
    if not isinstance(values["KEY_PREFIX"], str):
        errors.append(Error('TASKSTREAM["KEY_PREFIX"] must be a string.', id="taskstream.E015"))
    if not isinstance(values["SITE_NAME"], str) or not values["SITE_NAME"].strip():
        errors.append(Error('TASKSTREAM["SITE_NAME"] must be a non-empty string.',
                            id="taskstream.E057"))
    storage = values["PIPELINE_STORAGE"]
    if not isinstance(storage, str) or storage not in getattr(settings, "STORAGES", {}):
        errors.append(Error('TASKSTREAM["PIPELINE_STORAGE"] must name an entry of STORAGES.',
                            id="taskstream.E065"))
    hour = values["DIGEST_HOUR"]
    if not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23:
        errors.append(Error('TASKSTREAM["DIGEST_HOUR"] must be an hour from 0 to 23.',
                            id="taskstream.E075"))
    hb, hb_timeout = values["JOB_HEARTBEAT_INTERVAL"], values["JOB_HEARTBEAT_TIMEOUT"]
    if (isinstance(hb, int | float) and isinstance(hb_timeout, int | float)
            and hb_timeout <= 2 * hb):
        # One late heartbeat must not get a healthy job re-queued.
        errors.append(Error('TASKSTREAM["JOB_HEARTBEAT_TIMEOUT"] must exceed twice '
                            'JOB_HEARTBEAT_INTERVAL.', id="taskstream.E025"))
    return errors
