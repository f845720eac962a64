"""The API schema documents what the API answers: errors in the one shape, and pages."""

from __future__ import annotations

from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method.upper(), path, op) for path, ops in schema["paths"].items() for method, op in ops.items()]


def test_every_operation_documents_the_errors_it_can_answer_in_the_error_shape(schema) -> None:
    for method, path, op in _operations(schema):
        codes = set(op["responses"])
        if path != "/api/v1/auth/token/":
            assert {"401", "403"} <= codes, (method, path)
        if "{" in path:
            assert "404" in codes, (method, path)
        if method in ("POST", "PATCH"):
            assert "400" in codes, (method, path)
        if method in ("POST", "PATCH") and path != "/api/v1/auth/token/":
            assert {"409", "423"} <= codes, (method, path)
    token = schema["paths"]["/api/v1/auth/token/"]["post"]["responses"]
    assert "429" in token
    error = token["400"]["content"]["application/json"]["schema"]["$ref"]
    assert error.endswith("/ErrorOutput")
    assert set(schema["components"]["schemas"]["ErrorOutput"]["properties"]) == {"detail", "errors"}


def test_every_paginated_list_is_documented_as_a_page(schema, api, make_staff, walkback) -> None:
    """Each list operation's documented 200 matches what it answers: a page, or a plain list."""
    api.force_authenticate(make_staff("data_manager"))
    for method, path, op in _operations(schema):
        if method != "GET" or "{" in path:
            continue
        body = api.get(path).json()
        documented = op["responses"]["200"]["content"]["application/json"]["schema"]
        if isinstance(body, dict) and "results" in body and "count" in body:
            assert documented.get("$ref", "").split("/")[-1].startswith("Paginated"), path
            assert {"page", "page_size"} <= {p["name"] for p in op["parameters"]}, path
    queries = schema["paths"]["/api/v1/queries/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert queries["$ref"].endswith("/PaginatedQueryOutputList")
