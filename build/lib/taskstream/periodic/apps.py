from __future__ import annotations

from django.apps import AppConfig


class PeriodicConfig(AppConfig):
    name = "taskstream.periodic"
    label = "taskstream_periodic"
    verbose_name = "taskstream periodic tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from taskstream import checks  # noqa: F401  (E090 runs even without 'taskstream')
        from taskstream.periodic import history, tasks

        tasks.register_schedules()
        history.connect()
