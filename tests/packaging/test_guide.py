"""docs/install.md, followed as a new user would: the built wheel in a fresh venv (at the lock's
versions), ``django-admin startproject mysite``, every file block of the guide applied as it is
written, then server, worker, beat and relay against an embedded Redis; a job of the
project's own kind started over the HTTP API, its progress and completion received over
``/ws/``, and the project's own Channels consumer still answering beside the hub.

The venv is kept under var/guide/ (keyed by the lock and Python version) so a rerun only
reinstalls the wheel; the first run downloads from PyPI through pip's cache.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from taskstream.devredis import RedisProcess, free_port
from taskstream.testing import stop_group

pytestmark = [pytest.mark.guide, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "install.md"
LOCK = ROOT / "requirements" / "dev.txt"
FILE_BLOCK = re.compile(r"^```python file=(\S+)( append)?\n(.*?)^```", re.MULTILINE | re.DOTALL)
COMMANDS = re.compile(r"^\| [^|]+ \| `([^`]+)` \|$", re.MULTILINE)


def guide_files() -> list[tuple[str, bool, str]]:
    """The guide's file blocks in order: (path in the project, append?, text)."""
    return [(m[1], bool(m[2]), m[3]) for m in FILE_BLOCK.finditer(GUIDE.read_text())]


def guide_commands() -> dict[str, str]:
    """The process table of step 8: {"web": "python -m taskstream.server ...", ...}."""
    section = GUIDE.read_text().split("## 8.", 1)[1].split("\n## ", 1)[0]
    commands = COMMANDS.findall(section)
    names = ("web", "worker", "beat", "relay")
    assert len(commands) == len(names), f"step 8 lists {commands}"
    return dict(zip(names, commands, strict=True))


def run(cmd: list[str], **kwargs: Any) -> str:
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{cmd}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the wheel built from this tree and the lock's versions of its deps."""
    # Built from a copy: setuptools' build/ in the tree would keep deleted modules in the wheel.
    tree = tmp_path_factory.mktemp("tree")
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in", "CHANGELOG.md"):
        shutil.copy(ROOT / name, tree / name)
    shutil.copytree(ROOT / "src", tree / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist),
         str(tree)])
    (wheel,) = dist.glob("*.whl")
    key = hashlib.sha256(LOCK.read_bytes() + sys.version.encode()).hexdigest()[:12]
    venv = ROOT / "var" / "guide" / f"venv-{key}"
    python = venv / "bin" / "python"
    if not (venv / ".complete").exists():
        shutil.rmtree(venv, ignore_errors=True)
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(python), "-m", "pip", "install", "-q", f"{wheel}[example]", "-c", str(LOCK)])
        (venv / ".complete").touch()
    # The wheel of this run, over whatever an earlier run installed (same deps: the lock).
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
         str(wheel)])
    return venv


@pytest.fixture(scope="module")
def project(venv: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """``startproject mysite`` + ``startapp reports``, then the guide's blocks applied."""
    where = tmp_path_factory.mktemp("mysite")
    redis = RedisProcess().start()
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "DJANGO_SETTINGS_MODULE", "REDIS_URL",
                        "CELERY_BROKER_URL", "DATABASE_URL"}}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", REDIS_URL=redis.url,
               VIRTUAL_ENV=str(venv), PYTHONUNBUFFERED="1")
    run([str(venv / "bin" / "django-admin"), "startproject", "mysite", str(where)], env=env)
    run(["python", "manage.py", "startapp", "reports"], cwd=where, env=env)
    for path, append, text in guide_files():
        target = where / path
        target.write_text((target.read_text() + "\n" if append else "") + text)
    yield where, env
    redis.close()


def test_the_installed_package_is_the_wheel_not_this_tree(project: tuple[Path, dict[str, str]],
                                                          venv: Path) -> None:
    where, env = project
    location = run(["python", "-c", "import taskstream; print(taskstream.__file__)"],
                   cwd=where, env=env)
    assert location.startswith(str(venv)), location


@pytest.fixture(scope="module")
def processes(project: tuple[Path, dict[str, str]]) -> Iterator[dict[str, Any]]:
    where, env = project
    run(["python", "manage.py", "migrate", "-v", "0"], cwd=where, env=env)
    run(["python", "manage.py", "check", "--fail-level", "WARNING"], cwd=where, env=env)
    run(["python", "manage.py", "createsuperuser", "--noinput", "--username", "alice",
         "--email", "alice@example.com"], cwd=where, env={**env,
         "DJANGO_SUPERUSER_PASSWORD": "guide-pass-1"})
    port = free_port()
    commands = guide_commands()
    commands["web"] = commands["web"].replace("--port 8000", f"--port {port}")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    logs = where / "logs"
    logs.mkdir()
    try:
        for name, command in commands.items():
            # The relay's DJANGO_SETTINGS_MODULE=... prefix is the shell's; the rest is argv.
            assignments = dict(re.findall(r"^(\w+)=(\S+) ", command))
            argv = re.sub(r"^(\w+=\S+ )+", "", command).split()
            with (logs / f"{name}.log").open("wb") as log:  # the child keeps its own fd
                procs[name] = subprocess.Popen(
                    argv, cwd=where, env={**env, **assignments}, start_new_session=True,
                    stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(f"{base}/healthz", procs, logs)
        yield {"base": base, "port": port, "procs": procs, "logs": logs}
    finally:
        for proc in procs.values():
            stop_group(proc)


def _wait_until_up(url: str, procs: dict[str, subprocess.Popen[bytes]], logs: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            assert proc.poll() is None, f"{name} exited:\n{(logs / f'{name}.log').read_text()}"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)  # polling a condition (the server answering), not a fixed wait
    raise AssertionError(f"{url} never answered:\n{(logs / 'web.log').read_text()}")


class Browser:
    """Cookies + CSRF, as the guide's `curl -b cookies -H "X-CSRFToken: ..."`."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name and c.value)

    def request(self, path: str, *, data: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with self.opener.open(req, timeout=30) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def login(self, username: str, password: str) -> None:
        self.request("/admin/login/")
        form = urllib.parse.urlencode({"username": username, "password": password,
                                       "csrfmiddlewaretoken": self.cookie("csrftoken"),
                                       "next": "/admin/"}).encode()
        status, _ = self.request("/admin/login/?next=/admin/", data=form)
        assert status == 200 and self.cookie("sessionid")

    def post_json(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, raw = self.request(path, data=json.dumps(body).encode(), headers={
            "Content-Type": "application/json", "X-CSRFToken": self.cookie("csrftoken")})
        return status, json.loads(raw)


def test_the_guide_gives_a_live_job_beside_the_projects_own_consumer(
        processes: dict[str, Any]) -> None:
    base, port = processes["base"], processes["port"]
    browser = Browser(base)
    browser.login("alice", "guide-pass-1")

    status, client_js = browser.request("/static/taskstream/client.js")
    assert status == 200 and b"export class Hub" in client_js

    # A client that is not a page: no Origin, no cookie; a token in the first frame.
    status, token = browser.post_json("/api/ws-token/", {})
    assert status == 200, token
    status, job = browser.post_json("/api/jobs/", {"kind": "reports.count",
                                                   "params": {"to": 50}})
    assert status == 202, job
    assert job["kind"] == "reports.count" and job["topic"] == f"job:{job['id']}"

    with connect(f"ws://127.0.0.1:{port}/ws/", open_timeout=30) as ws:
        frames = _frames(ws)
        assert next(frames)["type"] == "welcome"
        ws.send(json.dumps({"type": "auth", "token": token["token"], "id": 1}))
        welcome = next(frames)
        assert welcome["type"] == "welcome" and welcome["user"] is not None, welcome
        ws.send(json.dumps({"type": "subscribe", "topic": job["topic"],
                            "since": job["cursor"], "id": 2}))
        assert next(frames)["type"] == "subscribed"
        events = []
        for frame in frames:
            assert frame["type"] == "event", frame
            events.append(frame)
            if frame["event"] in {"job.succeeded", "job.failed", "job.cancelled"}:
                break
    names = [e["event"] for e in events]
    assert names[-1] == "job.succeeded", names
    assert "job.started" in names and "job.progress" in names, names
    progress = [e["data"]["progress"]["current"] for e in events
                if e["event"] == "job.progress"]
    assert progress == sorted(progress) and 0 < progress[0] <= 50, progress
    final = events[-1]["data"]
    assert final["progress"]["current"] == final["progress"]["total"] == 50
    assert final["result"] == {"counted": 50}

    # The project's own consumer, behind its AllowedHostsOriginValidator + AuthMiddlewareStack.
    with connect(f"ws://127.0.0.1:{port}/echo/", open_timeout=30, additional_headers={
            "Origin": base, "Cookie": f"sessionid={browser.cookie('sessionid')}"}) as ws:
        ws.send(json.dumps({"hello": "echo"}))
        assert json.loads(ws.recv(timeout=30)) == {"echo": {"hello": "echo"}, "user": "alice"}

    for name, proc in processes["procs"].items():
        log = (processes["logs"] / f"{name}.log").read_text()
        assert proc.poll() is None, f"{name} died:\n{log}"


def _frames(ws: Any) -> Iterator[dict[str, Any]]:
    while True:
        frame = json.loads(ws.recv(timeout=60))
        if frame["type"] != "pong":
            yield frame
