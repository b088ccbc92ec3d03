"""Every answer a route can give, in the OpenAPI document: its errors too, not only its success.

FastAPI documents a route's success and, for a route with parameters, a 422 in its own shape
(``HTTPValidationError``), which is not what our handlers answer. :func:`document_answers` makes
``app.openapi()`` add to each route the errors it can answer because of what it is made of:

- 401 if it needs sign-in; 403 as well if a role is checked on top, or if it changes something
  (a change carried by the session cookie must send the CSRF token);
- 400 (malformed JSON) if it reads a JSON body; 415 (not JSON) for a POST, PUT or PATCH;
- 413 for any request (``BodySizeLimit`` sits in front of every route);
- 422 in our shape wherever FastAPI declared its own;
- 503: the service is starting (``not_ready``) or too busy (``busy``).

What depends on what the route does (404, 409, 429, a 422 from the domain...) the route declares
itself with ``responses=problems(...)``; its description of a status wins over the general one.
Every error status gets the :class:`~services.common.errors.ApiError` body. The document also
names the two ways to sign in (bearer token, session cookie), so ``/docs`` can send a token.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from starlette.routing import BaseRoute

from services.common.auth import SESSION_COOKIE, signed_in
from services.common.errors import HEADERS, PROBLEM_TEXT, ApiError

ERROR_REF = "#/components/schemas/ApiError"
BEARER, COOKIE = "bearerToken", "sessionCookie"
CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WITH_BODY = frozenset({"POST", "PUT", "PATCH"})
SECURITY_SCHEMES = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "Mã truy cập lấy từ POST /api/v1/auth/token (máy) hoặc khi đăng nhập.",
    },
    COOKIE: {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "Phiên đăng nhập của trình duyệt; thay đổi phải kèm X-CSRF-Token.",
    },
}


def document_answers(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare on every route the answers listed above."""
    generate = app.openapi
    done = False

    def openapi() -> dict[str, Any]:
        nonlocal done
        schema = generate()  # FastAPI's, cached: the same dict every time
        if not done:
            declare_common_answers(schema, app.routes)
            done = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def declare_common_answers(schema: dict[str, Any], routes: Iterable[BaseRoute]) -> None:
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).setdefault(
        "ApiError",
        ApiError.model_json_schema(
            mode="serialization", ref_template="#/components/schemas/{model}"
        ),
    )
    # Routes of an included router are seen as included (prefix, router dependencies).
    for route in iter_route_contexts(list(routes)):
        if not (isinstance(route.original_route, APIRoute) and route.include_in_schema):
            continue
        for method in route.methods or ():
            operation = schema["paths"][route.path_format].get(method.lower())
            if operation is not None:
                _declare(operation, route, method)
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    _drop_unused(components["schemas"], schema, ["HTTPValidationError", "ValidationError"])


def common_statuses(route: APIRoute | RouteContext, method: str) -> set[int]:
    """The error statuses ``route`` can answer to ``method`` whatever its handler does."""
    statuses = {413, 503}
    depth = _sign_in_depth(route.dependant)
    if depth is not None:
        statuses.add(401)
        if depth > 1 or method in CHANGES:
            statuses.add(403)
    if method in WITH_BODY:
        statuses.add(415)
    if route.body_field is not None:
        statuses |= {400, 422}
    return statuses


def _declare(operation: dict[str, Any], route: APIRoute | RouteContext, method: str) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for status in common_statuses(route, method):
        responses.setdefault(str(status), {})
    for key, answer in responses.items():
        if not key.isdigit() or int(key) < 400:
            continue
        status = int(key)
        content = answer.get("content", {}).get("application/json", {})
        if not content.get("schema") or "HTTPValidationError" in json.dumps(content["schema"]):
            answer["content"] = {"application/json": {"schema": {"$ref": ERROR_REF}}}
        if not answer.get("description") or answer["description"] == "Validation Error":
            answer["description"] = PROBLEM_TEXT.get(status, "Lỗi.")
        if status in HEADERS:
            answer.setdefault("headers", HEADERS[status])
    # In status order, as a reader of /docs looks for them.
    operation["responses"] = dict(sorted(responses.items()))
    if _sign_in_depth(route.dependant) is not None:
        operation.setdefault("security", [{BEARER: []}, {COOKIE: []}])


def _sign_in_depth(dependant: Dependant, depth: int = 1) -> int | None:
    """1 if the route asks ``signed_in`` itself, more if through another check (a role)."""
    found: list[int] = []
    for sub in dependant.dependencies:
        if sub.call is signed_in:
            found.append(depth)
        deeper = _sign_in_depth(sub, depth + 1)
        if deeper is not None:
            found.append(deeper)
    return max(found) if found else None


def _drop_unused(schemas: dict[str, Any], schema: dict[str, Any], names: list[str]) -> None:
    for name in names:
        definition = schemas.pop(name, None)
        if definition is not None and f'/{name}"' in json.dumps(schema):
            schemas[name] = definition  # still referenced somewhere: keep it
