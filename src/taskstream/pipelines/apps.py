from __future__ import annotations

from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "taskstream.pipelines"
    label = "taskstream_pipelines"
    verbose_name = "taskstream pipelines"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from taskstream.pipelines import tasks  # noqa: F401  (registers the step tasks)
