"""docs/testing.md, run as its reader would: every block named after a file is written, as
it is, into a project of its own, whose pytest run (the plugin from its entry point, no
conftest of ours) must pass every test the page shows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "testing.md"
FILE_BLOCK = re.compile(r"^```(?:python|ini) file=(\S+)\n(.*?)^```", re.MULTILINE | re.DOTALL)

# What the page leaves to the project: its settings (the demo's, with the app added). The
# broker is one nothing listens on: eager runs must not need it.
SETTINGS = '''
from example.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "boards.apps.BoardsConfig"]  # noqa: F405
CELERY_BROKER_URL = "redis://127.0.0.1:9/0"
'''


def doc_files() -> dict[str, str]:
    return {path: text for path, text in FILE_BLOCK.findall(DOC.read_text())}


def test_the_page_shows_a_job_a_topic_a_hook_and_their_tests() -> None:
    files = doc_files()
    assert {"boards/tasks.py", "boards/topics.py", "boards/apps.py", "pytest.ini",
            "conftest.py", "boards/tests/test_board_topic.py",
            "boards/tests/test_recount_job.py"} <= set(files)


def test_the_pages_tests_pass_in_a_project_of_their_own(tmp_path: Path) -> None:
    files = doc_files()
    for path, text in files.items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    for package in ("boards", "boards/tests", "mysite"):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    (tmp_path / "mysite" / "settings.py").write_text(SETTINGS)
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "PYTEST_ADDOPTS",
                        "TASKSTREAM_TEST_REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT), str(ROOT / "src")])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    tests = sum(len(re.findall(r"^(?:async )?def test_", text, re.MULTILINE))
                for path, text in files.items() if "/tests/" in path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert f"{tests} passed" in result.stdout, result.stdout[-3000:]
