from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from taskstream.notifications.models import Notification, SentEmail


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "recipient", "kind", "title", "read_at", "created_at")
    list_filter = ("kind", "created_at")
    search_fields = ("title", "recipient__username", "key")
    raw_id_fields = ("recipient",)
    date_hierarchy = "created_at"


@admin.register(SentEmail)
class SentEmailAdmin(admin.ModelAdmin):
    list_display = ("key", "to", "attempts", "sent_at", "created_at")
    search_fields = ("key", "to")
    raw_id_fields = ("recipient",)
    # A record of what was sent: written by the task only.
    readonly_fields = [f.name for f in SentEmail._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
