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
        from taskstream.ops.api_pages import router as pages_router

        receivers.connect()
        register_router(router)
        register_router(pages_router)
        _stamp_sent_messages()
        _forget_live_gauges_at_exit()


def _stamp_sent_messages() -> None:
    """Every task message this process sends carries its send time (the queues page's
    oldest message age, taskstream.ops.broker)."""
    from celery.signals import before_task_publish

    from taskstream.ops.broker import stamp_sent

    before_task_publish.connect(stamp_sent, weak=False, dispatch_uid="taskstream.ops.sent")


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
