"""``python -m taskstream.server`` refuses to start on bad settings, with a clear message."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from taskstream.testing import free_port


def start(server_env: dict[str, str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskstream.server", "example.asgi:application",
         "--port", str(free_port())],
        env={**server_env, **env}, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.django_db
def test_unreachable_redis_fails_at_start_up(server_env):
    result = start(server_env, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert result.returncode == 1
    assert "the hub's Redis does not answer" in result.stderr


@pytest.mark.django_db
def test_invalid_hub_setting_fails_at_start_up(server_env):
    result = start(server_env, TASKSTREAM_JSON=json.dumps({"HEARTBEAT": -1}))
    assert result.returncode == 1
    assert "taskstream.E012" in result.stderr


@pytest.mark.django_db
def test_the_settings_come_from_the_project_not_a_default(server_env):
    env = {k: v for k, v in server_env.items() if k != "DJANGO_SETTINGS_MODULE"}
    unreachable = f"redis://127.0.0.1:{free_port()}/0"
    # No DJANGO_SETTINGS_MODULE: the ASGI module names its settings as it loads.
    result = start(env, REDIS_URL=unreachable)
    assert result.returncode == 1 and "the hub's Redis does not answer" in result.stderr
    # An app module that names none, and no --settings: a clear refusal, not a guess.
    refused = subprocess.run(
        [sys.executable, "-m", "taskstream.server", "json:dumps", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "pass --settings or set DJANGO_SETTINGS_MODULE" in (
        refused.stderr)
