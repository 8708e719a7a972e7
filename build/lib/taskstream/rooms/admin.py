from __future__ import annotations

from django.contrib import admin

from taskstream.rooms.models import Message, Room


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "is_private", "created_by", "created_at")
    list_filter = ("is_private",)
    search_fields = ("slug", "name")
    raw_id_fields = ("created_by",)
    filter_horizontal = ("members",)


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("id", "room", "author", "created_at", "edited_at", "deleted_at")
    list_filter = ("room",)
    search_fields = ("body", "author__username", "room__slug")
    raw_id_fields = ("room", "author")
    date_hierarchy = "created_at"
