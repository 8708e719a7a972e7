from __future__ import annotations

from django.contrib import admin

from taskstream.periodic.models import MissedRun, PeriodicRun


@admin.register(PeriodicRun)
class PeriodicRunAdmin(admin.ModelAdmin):
    list_display = ("name", "started_at", "duration", "outcome", "hostname")
    list_filter = ("outcome", "name")
    search_fields = ("name", "task", "error")


@admin.register(MissedRun)
class MissedRunAdmin(admin.ModelAdmin):
    list_display = ("name", "due_at", "last_run_at", "detected_at")
