"""Bad pipeline and periodic settings are refused at start-up by system checks."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from taskstream.checks import check_settings


def ids(**values: Any) -> set[str]:
    with override_settings(TASKSTREAM={**settings.TASKSTREAM, **values}):
        return {error.id for error in check_settings()}


def test_defaults_pass() -> None:
    assert ids() == set()


@pytest.mark.parametrize(("values", "code"), [
    ({"PIPELINE_MAX_UPLOAD_BYTES": 0}, "taskstream.E060"),
    ({"PIPELINE_CHUNK_ROWS": -1}, "taskstream.E061"),
    ({"PIPELINE_MAX_COLUMNS": "many"}, "taskstream.E062"),
    ({"PIPELINE_RETRY_BACKOFF": 0}, "taskstream.E064"),
    ({"PIPELINE_STORAGE": "nowhere"}, "taskstream.E065"),
    ({"RETENTION_DAYS": 0}, "taskstream.E070"),
    ({"PERIODIC_GRACE": -5}, "taskstream.E073"),
    ({"BEAT_LOCK_TTL": 0}, "taskstream.E074"),
    ({"DIGEST_HOUR": 24}, "taskstream.E075"),
])
def test_bad_values_are_refused(values: dict[str, Any], code: str) -> None:
    assert code in ids(**values)
