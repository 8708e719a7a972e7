"""The OpenAPI schema documents the API's error answers: every 4xx body has a ``code``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

REF = "#/components/schemas/ApiErrorOut"


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys: {keys}"  # Swagger UI refuses them
    return dict(pairs)


@pytest.fixture
def schema() -> dict[str, Any]:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    data: dict[str, Any] = json.loads(response.content, object_pairs_hook=_no_duplicate_keys)
    return data


def answers(schema: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["paths"][path][method]["responses"]
    return found


def test_the_error_body_is_a_schema_with_a_code(schema: dict[str, Any]) -> None:
    error = schema["components"]["schemas"]["ApiErrorOut"]
    assert set(error["required"]) == {"code", "detail"}
    assert "errors" in error["properties"]


def test_each_operation_documents_the_errors_it_can_answer(schema: dict[str, Any]) -> None:
    start = answers(schema, "/api/jobs/", "post")
    assert {"400", "401", "403", "409", "422"} <= set(start)
    retry = answers(schema, "/api/jobs/{job_id}/retry/", "post")
    assert {"401", "403", "404", "409"} <= set(retry)
    listing = answers(schema, "/api/jobs/", "get")
    assert {"401", "422"} <= set(listing) and "403" not in listing and "404" not in listing
    # Every 4xx of every operation is the one error body.
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, answer in operation["responses"].items():
                if status.startswith("4"):
                    body = answer["content"]["application/json"]["schema"]
                    assert body == {"$ref": REF}, (method, path, status)


def test_what_the_schema_says_is_what_the_api_answers(django_user_model: Any) -> None:
    client = Client()
    assert client.get("/api/jobs/").json()["code"] == "unauthenticated"
    client.force_login(django_user_model.objects.create_user(username="u"))
    assert client.get("/api/jobs/?state=bogus").json()["code"] == "invalid"
    missing = client.post("/api/jobs/00000000-0000-0000-0000-000000000000/retry/")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
