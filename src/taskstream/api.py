"""The HTTP API root: one NinjaAPI; each installed feature app registers its router.

Mount it with ``path("api/", taskstream.api.api.urls)``. Session auth with CSRF on writes.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja import Router, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import django_auth

from taskstream import __version__, unavailable
from taskstream.api_errors import ApiErrorOut, DocumentedErrorsAPI
from taskstream.conf import conf
from taskstream.exceptions import Refusal
from taskstream.hub.auth import make_token

__all__ = ["ApiError", "ApiErrorOut", "api", "register_router"]

logger = logging.getLogger("taskstream")

api = DocumentedErrorsAPI(title="taskstream", version=__version__, urls_namespace="taskstream-api",
               auth=django_auth)


_CODES = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large", 429: "rate_limited"}


class ApiError(HttpError):
    """An HTTP error with a machine-readable ``code`` in its JSON body."""

    def __init__(self, status_code: int, code: str, detail: str) -> None:
        super().__init__(status_code, detail)
        self.code = code


def _error(request: HttpRequest, status: int, code: str, detail: str,
           **extra: Any) -> HttpResponse:
    return api.create_response(request, {"code": code, "detail": detail, **extra}, status=status)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = getattr(exc, "code", None)
    if code is None:
        code = "csrf_failed" if "CSRF" in str(exc) else _CODES.get(exc.status_code, "error")
    return _error(request, exc.status_code, code, str(exc))


@api.exception_handler(Refusal)
def _refused(request: HttpRequest, exc: Refusal) -> HttpResponse:
    return _error(request, exc.status, exc.code, exc.detail)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "unauthenticated", "sign in first")


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return _error(request, 422, "invalid", "the request did not validate", errors=exc.errors)


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _database_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    if not unavailable.database_unreachable(exc):
        raise exc
    logger.warning("database unreachable: %s %s answered 503 (%s)", request.method,
                   request.path, exc)
    response = _error(request, 503, unavailable.CODE, "the database does not answer; "
                      f"try again in {unavailable.RETRY_AFTER} s")
    response["Retry-After"] = str(unavailable.RETRY_AFTER)
    return response


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", "no such object")


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    # A form field or body over DATA_UPLOAD_MAX_MEMORY_SIZE (or too many fields).
    return _error(request, 413, "too_large", "the request or one of its fields is too large")


@api.exception_handler(SuspiciousOperation)
def _suspicious(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
    return _error(request, 400, "bad_request", "the request could not be read")


@api.exception_handler(MultiPartParserError)
def _bad_multipart(request: HttpRequest, exc: MultiPartParserError) -> HttpResponse:
    # Malformed multipart, or headers (a file name) over Django's size limit.
    return _error(request, 400, "bad_request", f"the multipart body could not be read: {exc}")


class WsToken(Schema):
    token: str
    expires_in: int


@api.post("/ws-token/", response=WsToken, tags=["hub"])
def ws_token(request: HttpRequest) -> dict[str, Any]:
    """A short-lived token for the ``auth`` frame of ``/ws/`` (send it in a frame, not a URL)."""
    token = make_token(request.user, session_key=request.session.session_key)
    return {"token": token, "expires_in": conf.TOKEN_MAX_AGE}


_added: list[Router] = []


def register_router(router: Router) -> None:
    """Add a feature app's endpoints to the API root; call it from ``AppConfig.ready()``.

    The root knows no feature app: each installed one registers itself (once, however
    often its ``ready()`` runs).
    """
    if any(router is added for added in _added):
        return
    _added.append(router)
    api.add_router("/", router)
