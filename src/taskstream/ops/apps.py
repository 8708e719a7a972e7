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
