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
