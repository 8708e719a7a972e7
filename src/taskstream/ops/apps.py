from __future__ import annotations

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "taskstream.ops"
    label = "taskstream_ops"
    verbose_name = "taskstream operations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from taskstream import checks  # noqa: F401  (E100 runs even without 'taskstream')
        from taskstream.api import register_router
        from taskstream.ops import receivers
        from taskstream.ops.api import router

        receivers.connect()
        register_router(router)
        _forget_live_gauges_at_exit()


def _forget_live_gauges_at_exit() -> None:
    """A process that exits takes its connections with it: drop its files of live gauges
    (multiprocess mode), or ``/metrics`` would go on counting them."""
    import atexit
    import os

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return

    def forget() -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())

    atexit.register(forget)
