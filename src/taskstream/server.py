"""Run an ASGI app under uvicorn with the hub's settings applied.

``python -m taskstream.server yourproject.asgi:application --port 8000``

The settings module is ``--settings``, else ``DJANGO_SETTINGS_MODULE``, else the one the
ASGI module names when imported (Django's ``asgi.py`` template sets it).

Keep-alive and frame limits live in the server: WebSocket pings every ``HEARTBEAT``
seconds, a peer that has not answered within another ``HEARTBEAT`` is closed, and a
frame over ``MAX_FRAME_BYTES`` closes the socket with 1009 before it is buffered.

SIGTERM drains: the process stops accepting at once (a proxy sends new connections to the
other processes), closes its sockets with 1012 (service restart) at random moments spread
over ``DRAIN_SECONDS``, so the clients come back to the other processes at an even rate
and resume from their cursors, lets in-flight requests finish (10 s more at most), then
exits.

A peer that stops reading is dropped at the transport level (:class:`HubWebSocketProtocol`):
a close frame would only queue behind the data it does not read, so the connection and
its buffers would live on. Another uvicorn launch gets the same with
``--ws taskstream.server:HubWebSocketProtocol``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import random
import socket
import struct
import sys
import termios
from importlib import import_module

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

logger = logging.getLogger("taskstream.hub")


class HubWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, dropping peers whose outbound data is stuck.

    The transport pauses writing when more than its high-water mark waits unsent. If it
    stays paused for ``OUTBOUND_STALL_TIMEOUT`` seconds, or a keep-alive ping goes
    unanswered while data still waits, the connection is aborted: its buffers are freed
    at once instead of waiting for a peer that never reads.
    """

    stall_timer: asyncio.TimerHandle | None = None
    drain_timer: asyncio.TimerHandle | None = None

    def shutdown(self) -> None:
        """uvicorn's server is stopping (it no longer accepts): close with 1012 after a
        random part of ``DRAIN_SECONDS``, so the process's sockets do not all reconnect
        elsewhere in the same instant. uvicorn waits for every connection to close."""
        if self.close_sent or not self.handshake_complete or self.drain_timer is not None:
            if self.drain_timer is None:
                super().shutdown()
            return
        from taskstream.conf import conf

        delay = random.uniform(0, conf.DRAIN_SECONDS)
        self.drain_timer = self.loop.call_later(delay, self._drained)

    def _drained(self) -> None:
        self.drain_timer = None
        if not self.transport.is_closing():
            super().shutdown()

    def pause_writing(self) -> None:
        super().pause_writing()
        if self.stall_timer is None:
            from taskstream.conf import conf

            self.stall_timer = self.loop.call_later(conf.OUTBOUND_STALL_TIMEOUT, self._stalled)

    def resume_writing(self) -> None:
        super().resume_writing()
        self._cancel_stall_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_stall_timer()
        if self.drain_timer is not None:
            self.drain_timer.cancel()
            self.drain_timer = None
        super().connection_lost(exc)

    def keepalive_timeout(self) -> None:
        stuck = self._unsent_bytes()
        # Writes a close frame and closes the transport, which would wait for a peer that
        # does not read; a peer that reads (but is late with its pong) still gets the close.
        super().keepalive_timeout()
        if stuck:
            self._abort("no answer to the keep-alive ping while data waits unsent")

    def _stalled(self) -> None:
        self.stall_timer = None
        self._abort("outbound data stuck")

    def _unsent_bytes(self) -> int:
        """Bytes waiting in the transport and in the kernel's send queue (Linux)."""
        waiting = self.transport.get_write_buffer_size()
        sock = self.transport.get_extra_info("socket")
        if sock is not None and hasattr(termios, "TIOCOUTQ"):
            with contextlib.suppress(OSError, ValueError):
                buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4)
                waiting += struct.unpack("i", buf)[0]
        return waiting

    def _abort(self, why: str) -> None:
        logger.info("hub: dropping %s:%s (%s)", *(self.client or ("?", "?")), why)
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            # Reset rather than close: the kernel frees the unsent data at once instead of
            # keeping it for a peer that will not take it.
            with contextlib.suppress(OSError, ValueError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.transport.abort()

    def _cancel_stall_timer(self) -> None:
        if self.stall_timer is not None:
            self.stall_timer.cancel()
            self.stall_timer = None


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

    # By its importable name, not this __main__'s: --workers pickles it for its children.
    from taskstream.server import HubWebSocketProtocol as ws_protocol

    uvicorn.run(
        args.app,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        loop="uvloop",
        http="httptools",
        ws=ws_protocol,
        ws_max_size=conf.MAX_FRAME_BYTES,
        ws_ping_interval=conf.HEARTBEAT,
        ws_ping_timeout=conf.HEARTBEAT,
        # permessage-deflate would compress every event once per socket: fan-out cost
        # grows with compression work instead of staying one pre-encoded write.
        ws_per_message_deflate=False,
        lifespan="off",
        access_log=False,
        # Sockets close over DRAIN_SECONDS; requests in flight get 10 s more.
        timeout_graceful_shutdown=int(conf.DRAIN_SECONDS) + 10,
    )


def _fail_fast() -> None:
    """Refuse to start on bad settings or an unreachable Redis: one clear message, exit status 1.

    Without this a wrong REDIS_URL would only show up as errors on the first sockets.
    """
    from django.core.management import call_command
    from django.core.management.base import SystemCheckError

    from taskstream import checks  # noqa: F401  (a hub without 'taskstream' installed: E100)
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
