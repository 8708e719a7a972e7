"""The staff pages of the ops app: the audit trail (and, later, the dashboard).

Staff is checked on every page: a signed-in non-staff user gets the site's 403 page.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from taskstream.ops.models import AuditRecord
from taskstream.ops.selectors import audit_page


def _staff(request: HttpRequest) -> None:
    if not (request.user.is_staff and request.user.is_active):
        raise PermissionDenied("The operations pages are for staff accounts.")


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
