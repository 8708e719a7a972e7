"""The staff pages of the ops app: overview (live), failures, long-running jobs, the audit
trail, and the confirmation pages of retry and cancel.

Staff is checked on every page: a signed-in non-staff user gets the site's 403 page, a
signed-out one the login page. Every action is a POST with the CSRF token, confirmed on
its own page first, and writes an audit record (taskstream.ops.services).
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from taskstream.hub.cursors_api import latest_cursor
from taskstream.jobs.exceptions import IllegalTransition
from taskstream.jobs.models import Job
from taskstream.ops import selectors, services
from taskstream.ops.api import overview_data
from taskstream.ops.models import AuditRecord
from taskstream.ops.selectors import audit_page


def _staff(request: HttpRequest) -> None:
    if not (request.user.is_staff and request.user.is_active):
        raise PermissionDenied("The operations pages are for staff accounts.")


@login_required
@ensure_csrf_cookie
def overview(request: HttpRequest) -> HttpResponse:
    _staff(request)
    cursor = latest_cursor("ops")  # before the numbers: a change after them is heard
    data = overview_data()
    monitor = selectors.monitor_overview()
    return render(request, "example/ops_overview.html", {
        "data": data, "chart": mark_safe(data["chart_svg"]),
        "monitor": monitor, "monitor_chart": mark_safe(monitor["chart_svg"]),
        "initial": {"topic": "ops", "cursor": cursor},
    })


@login_required
def failures(request: HttpRequest) -> HttpResponse:
    _staff(request)
    kind = request.GET.get("kind") or None
    return render(request, "example/ops_failures.html", {
        "jobs": selectors.jobs_failed(kind=kind), "kinds": selectors.failed_kinds(),
        "kind": kind})


@login_required
def stuck(request: HttpRequest) -> HttpResponse:
    _staff(request)
    return render(request, "example/ops_stuck.html", {"jobs": selectors.jobs_stuck()})


_ACTIONS = {"retry": services.ops_job_retry, "cancel": services.ops_job_cancel}


@login_required
@require_http_methods(["GET", "POST"])
def job_action(request: HttpRequest, job_id: uuid.UUID, action: str) -> HttpResponse:
    """GET: confirm; POST: do it (audited), then back to where the staff member came from."""
    _staff(request)
    run = _ACTIONS.get(action)
    job = Job.objects.filter(pk=job_id).select_related("owner").first()
    if run is None or job is None:
        raise Http404("no such job or action")
    back = _back(request)
    if request.method == "GET":
        return render(request, "example/ops_confirm.html", {
            "job": job, "action": action, "back": back,
            "question": f"{action.capitalize()} {job.kind} job {str(job.pk)[:8]} of "
                        f"{job.owner.get_username()}?"})
    try:
        run(job=job, actor=request.user)
        messages.success(request, f"{action.capitalize()}: job {str(job.pk)[:8]} done.")
    except IllegalTransition as exc:
        messages.error(request, f"Could not {action} job {str(job.pk)[:8]}: {exc}")
    return redirect(back)


@login_required
@require_http_methods(["GET", "POST"])
def retry_failed(request: HttpRequest) -> HttpResponse:
    """Retry every failed job of one kind, after a confirmation page."""
    _staff(request)
    kind = (request.POST.get("kind") if request.method == "POST" else request.GET.get("kind"))
    count = selectors.failed_kinds().get(kind or "", 0)
    if not kind:
        raise Http404("no kind")
    if request.method == "GET":
        return render(request, "example/ops_confirm.html", {
            "kind": kind, "back": "ops-failures", "action": "retry-all",
            "question": f"Retry all {count} failed {kind} job{'s' if count != 1 else ''}?"})
    queued = services.ops_retry_failed(kind=kind, actor=request.user)
    messages.success(request, f"{queued} failed {kind} job(s) queued again.")
    return redirect("ops-failures")


def _back(request: HttpRequest) -> str:
    wanted = request.POST.get("back") or request.GET.get("back")
    return wanted if wanted in ("ops-failures", "ops-stuck", "ops") else "ops"


class AuditFilterForm(forms.Form):
    outcome = forms.ChoiceField(required=False,
                                choices=[("", "Any outcome"), *AuditRecord.Outcome.choices])
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)


@login_required
def audit(request: HttpRequest) -> HttpResponse:
    _staff(request)
    form = AuditFilterForm(request.GET)
    if not form.is_valid():
        return render(request, "example/ops_audit.html", {"form": form}, status=400)
    outcome = form.cleaned_data["outcome"] or None
    found = audit_page(page=form.cleaned_data["page"] or 1, outcome=outcome)
    filters: dict[str, Any] = {"outcome": outcome} if outcome else {}

    def page_url(number: int) -> str:
        return "?" + urlencode({**filters, "page": number})

    return render(request, "example/ops_audit.html", {
        "form": form, "found": found,
        "newer_url": page_url(found.page - 1) if found.page > 1 else None,
        "older_url": page_url(found.page + 1) if found.page < found.pages else None,
    })
