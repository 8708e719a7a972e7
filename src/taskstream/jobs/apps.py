from __future__ import annotations

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "taskstream.jobs"
    label = "taskstream_jobs"
    verbose_name = "taskstream jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from taskstream.jobs import tasks  # noqa: F401  (schedules the reaper on beat)
        from taskstream.jobs.topics import register_job_topic

        register_job_topic()
