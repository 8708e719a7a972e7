from __future__ import annotations

from django.apps import AppConfig


class TaskstreamConfig(AppConfig):
    name = "taskstream"
    verbose_name = "taskstream"

    def ready(self) -> None:
        from celery import signals

        from taskstream import checks  # noqa: F401  (registers the system checks)
        from taskstream.housekeeping import install_on_beat
        from taskstream.hub.revocation import connect_signals
        from taskstream.hub.topics import register_builtin_topics

        register_builtin_topics()
        connect_signals()
        # The schedules feature apps register reach beat when it starts, whatever its
        # scheduler (Celery's public signal; no hook into Celery's app internals).
        signals.beat_init.connect(install_on_beat, weak=False,
                                  dispatch_uid="taskstream.housekeeping.install_on_beat")
