"""A clear answer while the database is unreachable: 503 JSON with a code, not a 500.

Add :class:`DatabaseUnavailableMiddleware` to ``MIDDLEWARE`` (pages and views); the API
root answers the same way by itself. A request whose database connection cannot be made,
or broke under it, gets ``{"code": "database_unavailable", ...}`` with ``Retry-After``
as soon as the driver gives up (a refused connection: at once; set the driver's connect
timeout, e.g. PostgreSQL's ``OPTIONS={"connect_timeout": 3}``, for hosts that vanish).
Other database errors (a missing table, a constraint) stay what they are.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.deprecation import MiddlewareMixin

logger = logging.getLogger("taskstream")

CODE = "database_unavailable"
# Seconds a client is asked to wait before it tries again.
RETRY_AFTER = 5


def database_unreachable(exc: BaseException, alias: str = DEFAULT_DB_ALIAS) -> bool:
    """True when ``exc`` means the database could not be reached (not a bad query)."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    wrapper = connections[alias]
    if wrapper.connection is None:
        return True  # connecting failed
    try:
        return not wrapper.is_usable()
    except Exception:
        return True


def database_unavailable_response() -> HttpResponse:
    response = JsonResponse({"code": CODE, "detail": "the database does not answer; "
                             f"try again in {RETRY_AFTER} s"}, status=503)
    response["Retry-After"] = str(RETRY_AFTER)
    return response


class DatabaseUnavailableMiddleware(MiddlewareMixin):
    """503 JSON (``database_unavailable``) for a view that cannot reach the database."""

    def process_exception(self, request: HttpRequest, exception: Exception) -> Any:
        if not database_unreachable(exception):
            return None
        logger.warning("database unreachable: %s %s answered 503 (%s)", request.method,
                       request.path, exception)
        return database_unavailable_response()
