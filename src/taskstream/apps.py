from __future__ import annotations

from django.apps import AppConfig


class TaskstreamConfig(AppConfig):
    name = "taskstream"
    verbose_name = "taskstream"

    def ready(self) -> None:
        from taskstream import checks  # noqa: F401  (registers the system checks)
        from taskstream.hub.topics import register_builtin_topics

        register_builtin_topics()
