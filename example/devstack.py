"""``make run``: the whole demo from one command.

``python -m example.devstack`` checks the configuration, applies migrations, creates the
demo user (``demo``/``demo``, DEBUG only), starts an embedded Redis unless ``REDIS_URL``
is set, then runs the Procfile (ASGI server, Celery worker, Celery beat, outbox relay)
under honcho and prints ``taskstream ready on http://127.0.0.1:PORT`` once ``/healthz``
answers.

``--processes N`` (``make run-cluster``: 2) runs N ASGI server processes on ports of their
own behind nginx on ``PORT``, with the configuration docs/operations.md shows (written to
``var/nginx/nginx.conf``; :mod:`example.proxy`). Sockets spread over the processes; a
process stopped with SIGTERM drains (its clients move to the others).

A wrong or unreachable ``DATABASE_URL``, ``REDIS_URL`` or ``CELERY_BROKER_URL`` stops it
with one line on stderr and exit status 1, before any process starts. Ctrl-C or SIGTERM
stops every process group honcho started, then the embedded Redis last (its clients
must not see it vanish first).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import socket
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
# Seconds to wait for /healthz before saying the site is slow to start.
READY_TIMEOUT = 120.0


class StartupError(Exception):
    """The stack cannot start; the message is the one line the user sees."""


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def read_port() -> int:
    raw = os.environ.get("PORT", "8000")
    try:
        port = int(raw)
    except ValueError:
        raise StartupError(f"PORT must be a number, got {raw!r}") from None
    if not 0 < port < 65536:
        raise StartupError(f"PORT must be between 1 and 65535, got {port}")
    with socket.socket() as sock:
        # As the server binds: connections of a previous run in TIME_WAIT (a browser had
        # the site open) do not make the port look taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise StartupError(f"PORT {port} is already in use; set PORT to a free one, "
                               f"e.g. PORT={port + 1} make run") from None
    return port


def embedded_url_file() -> Path:
    """Where a running stack leaves its embedded Redis's URL for ``manage.py`` commands."""
    return Path(os.environ.get("TASKSTREAM_VAR_DIR", ROOT / "var")) / "embedded-redis-url"


def _check(what: str, url: str, check: Callable[[], None]) -> None:
    from taskstream.health import describe_error

    try:
        check()
    except Exception as exc:
        raise StartupError(f"{what}: cannot connect to {redact(url)} ({describe_error(exc)})"
                           ) from exc


def setup_django(embedded_redis_url: str | None) -> None:
    """Configure Django and validate every backend; raises :class:`StartupError`."""
    from taskstream.health import describe_error

    if embedded_redis_url is not None:
        # The URL is known before the server starts, so settings read it like any other.
        os.environ["REDIS_URL"] = embedded_redis_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
    try:
        import django

        django.setup()
    except Exception as exc:
        raise StartupError(f"configuration error: {describe_error(exc)}") from exc

    from django.conf import settings
    from django.core import checks

    errors = [m for m in checks.run_checks() if m.level >= checks.ERROR]
    if errors:
        raise StartupError("; ".join(f"{m.id}: {m.msg}" for m in errors))

    from taskstream.health import check_broker, check_database, check_redis

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        Path(db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        db_label = f"sqlite:///{db['NAME']}"
    else:
        db_label = os.environ.get("DATABASE_URL", db["NAME"])
    _check("DATABASE_URL", db_label, check_database)
    if embedded_redis_url is None:
        url = os.environ["REDIS_URL"]
        _check("REDIS_URL", url, lambda: check_redis(url))
    broker = str(settings.CELERY_BROKER_URL or "")
    if not broker:
        raise StartupError("CELERY_BROKER_URL: not set (and no REDIS_URL to default to)")
    if broker != embedded_redis_url:
        _check("CELERY_BROKER_URL", broker, lambda: check_broker(broker))


def prepare_database() -> None:
    """Apply migrations; in DEBUG, make sure the demo user exists."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections

    from example.auth import DEMO_USERNAME
    from taskstream.health import describe_error

    print("taskstream: applying migrations", flush=True)
    try:
        call_command("migrate", interactive=False, verbosity=0)
    except Exception as exc:
        raise StartupError(f"migrations failed: {describe_error(exc)}") from exc
    if settings.DEBUG:
        user, created = get_user_model().objects.get_or_create(username=DEMO_USERNAME)
        # The printed credentials must work, even after someone changed the password.
        if created or not user.check_password("demo"):
            user.set_password("demo")
            user.save(update_fields=["password"])
        print("taskstream: demo user: demo / demo (DEBUG only)", flush=True)
    else:
        # A database carried over from a dev stack must not keep a known password
        # (example.auth refuses the account too, whatever its password).
        demo = get_user_model().objects.filter(username=DEMO_USERNAME, is_active=True).first()
        if demo is not None:
            demo.set_unusable_password()
            demo.is_active = False
            demo.save(update_fields=["password", "is_active"])
            print("taskstream: demo user disabled (DEBUG is off)", flush=True)
    # Honcho forks its process runners from here: they must not inherit an open connection.
    connections.close_all()


def child_env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    paths = [str(ROOT), str(ROOT / "src"), *filter(None, env.get("PYTHONPATH", "").split(
        os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    env["PORT"] = str(port)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("CELERY_BROKER_URL", env["REDIS_URL"])
    if "PROMETHEUS_MULTIPROC_DIR" not in env:
        env["PROMETHEUS_MULTIPROC_DIR"] = str(fresh_metrics_dir())
    return env


def fresh_metrics_dir() -> Path:
    """prometheus-client's multiprocess files for every process of the stack: /metrics sums
    them. Emptied at each start: files of processes gone would count again (docs/ops.md)."""
    path = Path(os.environ.get("TASKSTREAM_VAR_DIR", ROOT / "var")) / "prometheus"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# Honcho prints from the main thread, the ready line comes from another: one lock keeps
# every line whole (print() writes the text and the newline separately).
_output_lock = threading.Lock()


def say(line: str) -> None:
    with _output_lock:
        print(line, flush=True)


def announce_when_ready(port: int, stop: threading.Event) -> None:
    """Print the ready line once ``/healthz`` answers 200."""
    url = f"http://127.0.0.1:{port}/healthz"
    waited = 0.0
    hinted = False
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    say(f"taskstream ready on http://127.0.0.1:{port}")
                    return
        except urllib.error.HTTPError as exc:
            if exc.code == 400 and not hinted:
                hinted = True
                say("taskstream: /healthz answers 400: add 127.0.0.1 to ALLOWED_HOSTS")
        except OSError:
            pass
        stop.wait(0.2)
        waited += 0.2
        if waited >= READY_TIMEOUT and not hinted:
            hinted = True
            say(f"taskstream: still waiting for {url} after {READY_TIMEOUT:.0f} s")


def nginx_dir() -> Path:
    return Path(os.environ.get("TASKSTREAM_VAR_DIR", ROOT / "var")) / "nginx"


def cluster_processes(procfile: dict[str, str], port: int, processes: int,
                      ) -> list[tuple[str, str, dict[str, str]]]:
    """(name, command, extra env) of every process: the Procfile's, with ``web`` replaced by
    ``processes`` servers behind nginx on ``port`` when ``processes`` > 1."""
    if processes <= 1:
        return [(name, cmd, {}) for name, cmd in procfile.items()]
    from example.proxy import command, nginx_binary, write_conf
    from taskstream.devredis import free_port

    if nginx_binary() is None:
        raise StartupError("--processes needs nginx (Debian: apt-get install nginx)")
    ports = [free_port() for _ in range(processes)]
    conf = write_conf(listen=port, upstreams=ports, prefix=nginx_dir())
    result = [(f"web{i + 1}", procfile["web"], {"PORT": str(p)}) for i, p in enumerate(ports)]
    result.append(("proxy", shlex.join(command(conf)), {}))
    result += [(name, cmd, {}) for name, cmd in procfile.items() if name != "web"]
    return result


def run_procfile(port: int, processes: int = 1) -> int:
    """Run the Procfile under honcho until a signal or a process exit; its return code."""
    from honcho.environ import parse_procfile
    from honcho.manager import Manager
    from honcho.printer import Message, Printer

    class LockedPrinter(Printer):
        def write(self, message: Message) -> None:
            with _output_lock:
                super().write(message)

    class StackManager(Manager):  # type: ignore[misc]
        def terminate(self) -> None:
            if not self._terminating and (message := stop_message()) is not None:
                say(message)
            super().terminate()

    procfile = parse_procfile(PROCFILE.read_text())
    env = child_env(port)
    manager = StackManager(LockedPrinter(sys.stdout, colour=sys.stdout.isatty()))
    for name, cmd, extra in cluster_processes(procfile.processes, port, processes):
        # Each runs in a process group of its own (honcho's default), stopped as a group,
        # under a lifeline that stops it if this process is killed without a word.
        lifeline = f"{shlex.quote(sys.executable)} -m example.lifeline {os.getpid()} " \
                   f"{shlex.quote(cmd)}"
        manager.add_process(name, lifeline,
                            env={**env, **extra, "HONCHO_PROCESS_NAME": name}, cwd=str(ROOT))

    stop = threading.Event()
    threading.Thread(target=announce_when_ready, args=(port, stop), daemon=True).start()
    try:
        manager.loop()
    finally:
        stop.set()
        # Anything left in a group whose leader is gone (a grandchild that ignored
        # SIGTERM) must not outlive the stack.
        processes: dict[str, dict[str, Any]] = getattr(manager, "_processes", {})
        for info in processes.values():
            pid = info.get("pid")
            if pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
    code = manager.returncode or 0
    # Stopped by Ctrl-C or SIGTERM: that is a clean exit, not a failure.
    return 0 if code in (128 + signal.SIGINT, 128 + signal.SIGTERM) else code


def stop_message() -> str | None:
    """What a stop will wait for, if anything: jobs the worker is running."""
    from django.apps import apps
    from django.db import connections

    # Seconds honcho lets processes stop after SIGTERM before it SIGKILLs them.
    from honcho.manager import KILL_WAIT

    if not apps.is_installed("taskstream.jobs"):
        return None
    from taskstream.jobs.models import Job

    try:
        running = Job.objects.filter(state="running").count()
    except Exception:  # the database is gone too: say nothing rather than fail the stop
        return None
    finally:
        connections.close_all()
    if not running:
        return None
    jobs = "1 job is" if running == 1 else f"{running} jobs are"
    return (f"taskstream: stopping: {jobs} running; the worker gets {KILL_WAIT} s to finish "
            f"{'it' if running == 1 else 'them'}, then it is killed and the reaper re-queues "
            f"what did not finish at the next start")


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m example.devstack")
    parser.add_argument("--processes", type=int, default=1,
                        help="ASGI server processes; more than 1 puts nginx in front on PORT")
    args = parser.parse_args(argv)
    if not 1 <= args.processes <= 64:
        parser.error("--processes must be between 1 and 64")
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)
    # Until honcho takes over the signals, SIGTERM unwinds like Ctrl-C so Redis is stopped.
    signal.signal(signal.SIGTERM, _raise_interrupt)

    from taskstream.devredis import RedisProcess

    embedded: RedisProcess | None = None
    try:
        port = read_port()
        if not os.environ.get("REDIS_URL"):
            embedded = RedisProcess(die_with_parent=True)
        setup_django(embedded.url if embedded else None)
        if embedded is not None:
            try:
                embedded.start()
            except (OSError, RuntimeError, TimeoutError) as exc:
                raise StartupError(f"embedded Redis did not start: {exc}") from exc
            print(f"taskstream: embedded Redis on {embedded.url} (set REDIS_URL to use your own)",
                  flush=True)
            # For `python manage.py ...` beside the stack (createsuperuser needs REDIS_URL).
            embedded_url_file().write_text(embedded.url + "\n")
        prepare_database()
        code = run_procfile(port, args.processes)
        print("taskstream: stopped", flush=True)
        return code
    except StartupError as exc:
        print(f"taskstream: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        if embedded is not None:
            with contextlib.suppress(OSError):
                embedded_url_file().unlink(missing_ok=True)
            embedded.close()


if __name__ == "__main__":
    sys.exit(main())
