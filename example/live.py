"""The "Live" demo page: the signed-in user's ``user:<id>`` topic, shown as it happens."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_POST

from taskstream.hub import publish


@login_required
def live_page(request: HttpRequest) -> HttpResponse:
    """The page; its script subscribes to ``user:<id>`` with client.js."""
    return render(request, "example/live.html", {"topic": f"user:{request.user.pk}"})


@login_required
@require_POST
def live_ping(request: HttpRequest) -> JsonResponse:
    """Publish a ``demo.ping`` to the user's own topic, the way a Celery task would."""
    cursor = publish(f"user:{request.user.pk}", "demo.ping", {
        "message": "Test event from the server",
        "sent_at": timezone.now().isoformat(),
    })
    return JsonResponse({"cursor": cursor})
