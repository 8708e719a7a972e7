from __future__ import annotations

from django.apps import AppConfig


class RoomsConfig(AppConfig):
    name = "taskstream.rooms"
    label = "taskstream_rooms"
    verbose_name = "taskstream rooms"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from taskstream import checks  # noqa: F401  (E090 runs even without 'taskstream')
        from taskstream.api import register_router
        from taskstream.rooms.api import router

        register_router(router)
        from taskstream.rooms import receivers
        from taskstream.rooms.topics import register_room_topic

        register_room_topic()
        receivers.connect()
