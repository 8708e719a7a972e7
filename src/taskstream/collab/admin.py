from __future__ import annotations

from django.contrib import admin

from taskstream.collab.models import Document, DocumentMember


class MemberInline(admin.TabularInline):
    model = DocumentMember
    raw_id_fields = ("user",)
    extra = 0


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "id",
        "owner",
        "public_read",
        "version",
        "snapshot_version",
        "updated_at",
    )
    list_filter = ("public_read",)
    search_fields = ("title", "id", "owner__username")
    raw_id_fields = ("owner",)
    readonly_fields = ("id", "version", "snapshot_version", "created_at", "updated_at")
    inlines = [MemberInline]
