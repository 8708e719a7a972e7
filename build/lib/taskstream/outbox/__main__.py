"""``python -m taskstream.outbox``: run the outbox relay until SIGTERM or Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from types import FrameType


def main() -> None:
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        sys.exit("python -m taskstream.outbox: set DJANGO_SETTINGS_MODULE to your settings")
    import django

    django.setup()
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from taskstream.outbox.relay import relay_run

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    relay_run(stop)


if __name__ == "__main__":
    main()
