from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Consume Celery's worker and task events; publish summaries on the ops topic."

    def handle(self, *args: Any, **options: Any) -> None:
        import signal

        from celery import current_app

        from taskstream.ops.monitor import Monitor

        monitor = Monitor(current_app)

        def on_signal(signum: int, frame: Any) -> None:
            monitor.stopping.set()
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, on_signal)
        monitor.run()
