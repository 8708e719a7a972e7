"""Leaving the base ``taskstream`` app out of INSTALLED_APPS is a start-up error (E100), not a
``client.js`` 404 in the page: checked with ``manage.py check`` on a settings module of a
project's own shape, in a subprocess (INSTALLED_APPS is read once per process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SETTINGS = """
SECRET_KEY = "test"
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}}}
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth",
                  "django.contrib.staticfiles", {apps}]
STATIC_URL = "static/"
TASKSTREAM = {{"REDIS_URL": "redis://127.0.0.1:1/0"}}
"""


def check(tmp_path: Path, apps: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "proj_settings.py").write_text(SETTINGS.format(apps=apps))
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "proj_settings",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src")])}
    return subprocess.run([sys.executable, "-m", "django", "check"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("feature", ["taskstream.jobs", "taskstream.rooms", "taskstream.ops"])
def test_a_feature_app_without_the_base_app_fails_the_check(tmp_path: Path, feature: str) -> None:
    result = check(tmp_path, f'"{feature}"')
    assert result.returncode == 1, result.stdout + result.stderr
    assert "taskstream.E100" in result.stderr
    assert f"'taskstream' is missing from INSTALLED_APPS, which {feature} needs" in result.stderr


def test_with_the_base_app_the_check_passes(tmp_path: Path) -> None:
    result = check(tmp_path, '"taskstream", "taskstream.jobs"')
    assert result.returncode == 0, result.stdout + result.stderr
    assert "E100" not in result.stderr
