"""The error answers of the HTTP API, documented in its OpenAPI schema.

Every 4xx body is ``{"code", "detail"}`` (422 adds ``errors``). The answers that any
operation can give — not signed in, CSRF, not found, did not validate — are added to each
operation here, from what the operation is (secured, a write, has a path id, takes input);
an operation's own answers (409 ``not_retryable``) it declares itself with
:class:`ApiErrorOut` in its ``response``.
"""

from __future__ import annotations

from typing import Any

from ninja import Field, NinjaAPI, Schema

_REF = "#/components/schemas/ApiErrorOut"
_WRITES = frozenset({"post", "put", "patch", "delete"})


class ApiErrorOut(Schema):
    """The body of every 4xx answer."""

    code: str = Field(..., description="Machine-readable: `not_found`, `invalid`, "
                                       "`not_retryable`, … (one per failure).")
    detail: str = Field(..., description="A sentence for people.")
    errors: list[dict[str, Any]] | None = Field(
        None, description="422 only: each input that did not validate, pydantic's way.")


def _answer(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": _REF}}}}


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the common 4xx answers to every operation of ``schema`` (in place; returned)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.setdefault("ApiErrorOut", ApiErrorOut.model_json_schema())
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            answers = operation["responses"]
            secured = bool(operation.get("security"))
            if secured:
                answers.setdefault("401", _answer("Not signed in (`unauthenticated`)."))
            if secured and method in _WRITES:
                answers.setdefault("403", _answer(
                    "The CSRF check failed (`csrf_failed`), or not allowed (`forbidden`)."))
            if "{" in path:
                answers.setdefault("404", _answer(
                    "No such object, or not yours: never confirms it exists (`not_found`)."))
            if operation.get("parameters") or operation.get("requestBody"):
                answers.setdefault("422", _answer(
                    "The request did not validate (`invalid`); `errors` says where."))
    return schema


class DocumentedErrorsAPI(NinjaAPI):
    """A NinjaAPI whose schema documents the 4xx answers of every operation."""

    def get_openapi_schema(self, *, path_prefix: str | None = None,
                           path_params: dict[str, Any] | None = None) -> Any:
        return document_errors(super().get_openapi_schema(path_prefix=path_prefix,
                                                          path_params=path_params))
