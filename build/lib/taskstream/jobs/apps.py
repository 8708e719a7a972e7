from __future__ import annotations

from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "taskstream.jobs"
    label = "taskstream_jobs"
    verbose_name = "taskstream jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from taskstream import checks  # noqa: F401  (E090 runs even without 'taskstream')
        from taskstream.api import register_router
        from taskstream.jobs import (
            housekeeping,
            tasks,  # noqa: F401  (registers the reaper task)
        )
        from taskstream.jobs.api import router
        from taskstream.jobs.topics import register_job_topic

        register_job_topic()
        register_router(router)
        housekeeping.register()  # the reaper on beat, the purge of finished jobs
