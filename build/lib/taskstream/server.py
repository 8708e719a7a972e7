"""Run an ASGI app under uvicorn with the hub's settings applied.

``python -m taskstream.server yourproject.asgi:application --port 8000``

The settings module is ``--settings``, else ``DJANGO_SETTINGS_MODULE``, else the one the
ASGI module names when imported (Django's ``asgi.py`` template sets it).

Keep-alive and frame limits live in the server: WebSocket pings every ``HEARTBEAT``
seconds, a peer that has not answered within another ``HEARTBEAT`` is closed, and a
frame over ``MAX_FRAME_BYTES`` closes the socket with 1009 before it is buffered.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module

import uvicorn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m taskstream.server")
    parser.add_argument("app", help="ASGI application, module:attribute")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "info"))
    parser.add_argument("--settings", help="Django settings module (else DJANGO_SETTINGS_MODULE)")
    args = parser.parse_args(argv)

    if args.settings:
        os.environ["DJANGO_SETTINGS_MODULE"] = args.settings
    elif not os.environ.get("DJANGO_SETTINGS_MODULE"):
        module = args.app.partition(":")[0]
        try:
            import_module(module)  # an asgi.py sets DJANGO_SETTINGS_MODULE as it loads
        except ImportError as exc:
            parser.error(f"cannot import {module}: {exc}")
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        parser.error("no settings: pass --settings or set DJANGO_SETTINGS_MODULE")
    import django

    django.setup()
    _fail_fast()
    from taskstream.conf import conf

    uvicorn.run(
        args.app,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_max_size=conf.MAX_FRAME_BYTES,
        ws_ping_interval=conf.HEARTBEAT,
        ws_ping_timeout=conf.HEARTBEAT,
        # permessage-deflate would compress every event once per socket: fan-out cost
        # grows with compression work instead of staying one pre-encoded write.
        ws_per_message_deflate=False,
        lifespan="off",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


def _fail_fast() -> None:
    """Refuse to start on bad settings or an unreachable Redis: one clear message, exit status 1.

    Without this a wrong REDIS_URL would only show up as errors on the first sockets.
    """
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    from taskstream import checks  # noqa: F401  (a hub without 'taskstream' installed: E090)
    from taskstream.health import check_redis, describe_error

    try:
        call_command("check", fail_level="ERROR", stdout=open(os.devnull, "w"))  # noqa: SIM115
    except SystemCheckError as exc:
        sys.exit(f"taskstream: settings are invalid:\n{exc}")
    try:
        check_redis()
    except Exception as exc:
        sys.exit(f"taskstream: the hub's Redis does not answer: {describe_error(exc)}")


if __name__ == "__main__":
    main()
