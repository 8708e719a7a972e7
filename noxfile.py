"""The test matrix: the oldest and the newest dependencies pyproject.toml allows, on Python 3.11
and 3.13.

* ``oldest``: every library dependency at its lower bound (requirements/oldest.txt, made by
  ``make lock`` with uv's lowest-direct resolution): Django 5.2, Celery 5.4, channels 4.1,
  redis-py 5.0, ...
* ``newest``: the newest releases the ranges allow today (on 3.13 that is Django 6.x).

``make matrix`` runs all four sessions on the unit and integration tests (no browser: those run
in ``make test``). ``.ci/run`` runs ``ci``: the oldest pins on 3.11 and a fast subset, so a
change that breaks the lower bounds fails CI. Virtualenvs are made by uv (fast, shared cache)
and reused between runs; they live in var/nox/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.reuse_existing_virtualenvs = True
nox.options.envdir = "var/nox"
nox.options.sessions = ["tests"]

ROOT = Path(__file__).parent
OLDEST = "requirements/oldest.txt"
PYTHONS = ["3.11", "3.13"]

# uv must use the interpreters on this machine (pyenv's), never download one.
os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")
if shutil.which("pyenv"):
    versions = Path(os.popen("pyenv root").read().strip()) / "versions"
    extra = [str(p / "bin") for p in sorted(versions.glob("3.1[1-3]*"))]
    os.environ["PATH"] = os.pathsep.join([*extra, os.environ["PATH"]])

# The suite's own default, as `make test`: SQLite + an embedded Redis (these select services).
for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
    os.environ.pop(name, None)
UNIT_AND_INTEGRATION = ["tests", "--ignore=tests/e2e", "-m", "not e2e and not guide"]
# A few minutes on the oldest pins: the hub's and the jobs' unit tests, the outbox, the
# packaging checks, the jobs path end to end (a real server and a real worker), and the test
# helpers users get (the in-process hub client and the plugin's fixtures, eager jobs).
FAST = [
    "tests/hub", "tests/jobs", "tests/outbox", "tests/test_dependencies.py", "tests/packaging",
    "tests/integration/test_jobs.py", "tests/test_communicator.py",
    "-m", "not e2e and not guide",
]
VERSIONS = (
    "import importlib.metadata as m, sys; print('python', sys.version.split()[0], *("
    "f'{d} {m.version(d)}' for d in ('django', 'celery', 'channels', 'redis', 'pydantic', "
    "'django-ninja', 'uvicorn', 'django-celery-beat')), sep=' | ')"
)


def _install(session: nox.Session, deps: str) -> None:
    if deps == "oldest":
        session.install("-e", ".[test]", "-c", OLDEST)
    else:
        session.install("--upgrade", "-e", ".[test]")
    session.run("python", "-c", VERSIONS)


@nox.session(python=PYTHONS)
@nox.parametrize("deps", ["oldest", "newest"])
def tests(session: nox.Session, deps: str) -> None:
    """Unit + integration tests on the oldest or the newest allowed dependencies."""
    _install(session, deps)
    session.run("python", "-m", "pytest", "-q",
                *(session.posargs or UNIT_AND_INTEGRATION))


@nox.session(python="3.11")
def ci(session: nox.Session) -> None:
    """The reduced matrix CI runs: the oldest pins on 3.11, a fast subset."""
    _install(session, "oldest")
    session.run("python", "-m", "pytest", "-q", *(session.posargs or FAST))
