from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "taskstream.notifications"
    label = "taskstream_notifications"
    verbose_name = "taskstream notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.apps import apps

        from taskstream import checks  # noqa: F401  (E090 runs even without 'taskstream')
        from taskstream.api import register_router
        from taskstream.notifications import housekeeping
        from taskstream.notifications.api import router

        register_router(router)
        housekeeping.register()  # purge of read notifications, the daily digest
        if apps.is_installed("taskstream.jobs"):
            from taskstream.notifications import receivers  # noqa: F401  (connects them)
        if apps.is_installed("taskstream.pipelines"):
            from taskstream.notifications import reports

            reports.connect()
