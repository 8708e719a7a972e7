from __future__ import annotations

from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "taskstream.notifications"
    label = "taskstream_notifications"
    verbose_name = "taskstream notifications"
    default_auto_field = "django.db.models.BigAutoField"
