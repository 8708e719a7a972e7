from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from taskstream.jobs.exceptions import JobError
from taskstream.jobs.models import Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "owner", "state", "progress_current", "progress_total",
                    "attempt", "created_at", "finished_at")
    list_filter = ("state", "kind", "cancel_requested", "created_at")
    search_fields = ("id", "kind", "owner__username", "celery_task_id", "idempotency_key")
    date_hierarchy = "created_at"
    raw_id_fields = ("owner", "parent")
    actions = ("cancel_jobs", "retry_jobs")
    # State moves only through the services, never by editing the row.
    readonly_fields = [f.name for f in Job._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def _each(self, request: HttpRequest, queryset: QuerySet[Job], action: Any,
              verb: str) -> None:
        done = 0
        for job in queryset:
            try:
                action(job=job, actor=request.user)
                done += 1
            except JobError as exc:
                self.message_user(request, f"{job.id}: {exc}", messages.WARNING)
        self.message_user(request, f"{verb} {done} job(s).", messages.SUCCESS)

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        from taskstream.jobs.services import job_cancel

        self._each(request, queryset, job_cancel, "Cancelled")

    @admin.action(description="Retry selected failed or cancelled jobs")
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        from taskstream.jobs.services import job_retry

        self._each(request, queryset, job_retry, "Retried")
