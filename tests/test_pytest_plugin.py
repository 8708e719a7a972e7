"""The pytest plugin as a user's project gets it: loaded by its entry point, with no conftest
of ours, in a pytest run of its own."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

USER_TEST = '''
import pytest

from taskstream.hub import apublish, register_topic, unregister_topic


@pytest.fixture
def board_topic():
    register_topic("board", authorize=lambda user, key: True, key_pattern=r"[a-z]+")
    yield
    unregister_topic("board")


@pytest.mark.asyncio
async def test_the_hub_fixture_receives_what_is_published(taskstream_hub, board_topic):
    hub = await taskstream_hub()
    await hub.subscribe("board:main")
    await apublish("board:main", "moved", {"to": 3})
    frame = await hub.receive_event("board:main")
    assert (frame["event"], frame["data"]) == ("moved", {"to": 3})


def test_the_redis_fixture_points_the_hub_at_a_redis_of_its_own(taskstream_redis):
    from django.conf import settings

    assert settings.TASKSTREAM["REDIS_URL"] == taskstream_redis
    assert settings.TASKSTREAM["KEY_PREFIX"].startswith("tstest")
'''


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    (entry,) = [e for e in importlib.metadata.entry_points(group="pytest11")
                if e.name == "taskstream"]
    assert entry.value == "taskstream.pytest_plugin"


def test_a_projects_own_tests_use_the_fixtures_without_any_conftest(tmp_path: Path) -> None:
    (tmp_path / "test_board.py").write_text(USER_TEST)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nDJANGO_SETTINGS_MODULE = example.settings\n"
        "asyncio_default_fixture_loop_scope = function\nfilterwarnings =\n    error\n")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PYTEST_ADDOPTS",
                        "TASKSTREAM_TEST_REDIS_URL")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src")])
    # The user's project here is the demo's settings module; no conftest: the fixtures can
    # only come from the entry point.
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_board.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
