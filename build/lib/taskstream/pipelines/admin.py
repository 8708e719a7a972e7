from __future__ import annotations

from django.contrib import admin

from taskstream.pipelines.models import Pipeline, Upload


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = ("original_name", "owner", "size", "created_at")
    search_fields = ("original_name", "sha256", "owner__username")
    readonly_fields = ("stored_name", "sha256", "size", "encoding", "delimiter")


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "kind", "total_rows", "created_at")
    list_select_related = ("owner",)
    readonly_fields = ("job", "upload", "columns", "summary", "report_csv", "report_html")
