"""The demo's Content-Security-Policy, and the start-up checks of its production settings.

Scripts are same-origin modules; the few inline ``<script type="module">`` and ``<style>``
blocks carry the request's nonce (``{{ request.csp_nonce }}``), so neither
``'unsafe-inline'`` nor ``'unsafe-eval'`` is needed. A response that sets its own policy
(the pipelines' HTML reports: sandboxed, no scripts) keeps it.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.core.checks import Error, Tags, register
from django.http import HttpRequest, HttpResponse
from django.utils.deprecation import MiddlewareMixin

POLICY = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; "
          "style-src 'self' 'nonce-{nonce}'; img-src 'self' data:; font-src 'self'; "
          "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
          "frame-ancestors 'none'")
MIDDLEWARE = "example.security.ContentSecurityPolicyMiddleware"


class ContentSecurityPolicyMiddleware(MiddlewareMixin):
    """Gives each request a nonce and each response the policy (sync and async)."""

    def process_request(self, request: HttpRequest) -> None:
        request.csp_nonce = secrets.token_urlsafe(16)  # type: ignore[attr-defined]

    def process_response(self, request: HttpRequest, response: HttpResponse) -> HttpResponse:
        nonce = getattr(request, "csp_nonce", None)
        if nonce and "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = POLICY.format(nonce=nonce)
        return response


@register(Tags.security)
def check_production_security(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """With DEBUG off: HSTS, secure session and CSRF cookies, and the CSP middleware."""
    if settings.DEBUG:
        return []
    errors = []
    if not getattr(settings, "SECURE_HSTS_SECONDS", 0):
        errors.append(Error("SECURE_HSTS_SECONDS must be set when DEBUG is off.",
                            hint="e.g. 31536000 (a year); browsers then refuse plain HTTP.",
                            id="example.E001"))
    if not getattr(settings, "SESSION_COOKIE_SECURE", False):
        errors.append(Error("SESSION_COOKIE_SECURE must be True when DEBUG is off.",
                            id="example.E002"))
    if not getattr(settings, "CSRF_COOKIE_SECURE", False):
        errors.append(Error("CSRF_COOKIE_SECURE must be True when DEBUG is off.",
                            id="example.E003"))
    if MIDDLEWARE not in settings.MIDDLEWARE:
        errors.append(Error(f"{MIDDLEWARE} must be in MIDDLEWARE when DEBUG is off.",
                            hint="It sends the Content-Security-Policy header.",
                            id="example.E004"))
    return errors
