from __future__ import annotations

from django.apps import AppConfig


class CollabConfig(AppConfig):
    name = "taskstream.collab"
    label = "taskstream_collab"
    verbose_name = "taskstream shared documents"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from taskstream import checks  # noqa: F401  (E100 runs even without 'taskstream')
        from taskstream.api import register_router
        from taskstream.collab import receivers
        from taskstream.collab.api import router
        from taskstream.collab.topics import register_doc_topic

        register_router(router)
        register_doc_topic()
        receivers.connect()
