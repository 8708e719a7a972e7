"""``/metrics``: the Prometheus text format, for a bearer token or a signed-in staff user."""

from __future__ import annotations

import hmac

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from taskstream.conf import conf
from taskstream.ops.metrics import registry


def _token_ok(request: HttpRequest) -> bool | None:
    """True/False for a bearer token that matches or not; None when none was sent."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    expected = conf.METRICS_TOKEN
    return bool(expected) and hmac.compare_digest(token.strip().encode(), expected.encode())


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Every taskstream metric; ``METRICS_TOKEN`` as ``Authorization: Bearer``, or staff."""
    token = _token_ok(request)
    if token is False:
        return _refuse(401, "unauthenticated", "wrong metrics token")
    if token is None:
        user = request.user
        if not user.is_authenticated:
            return _refuse(401, "unauthenticated", "send the metrics token or sign in as staff")
        if not (user.is_staff and user.is_active):
            return _refuse(403, "forbidden", "staff only")
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


def _refuse(status: int, code: str, detail: str) -> HttpResponse:
    response = JsonResponse({"code": code, "detail": detail}, status=status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response
