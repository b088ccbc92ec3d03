"""Issue 9: every error answers {code, message, details} and every status is declared.

The shapes are checked on a small app with the real handlers; the OpenAPI documents on the four
services built (not started): every error a route can answer is there, with the error body.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from services.common.auth import Role, SignedIn
from services.common.errors import ApiError, install_error_handlers, problems, require_json_body
from services.common.openapi import document_answers
from services.consolidate.app import build_app as build_consolidate
from services.consolidate.config import ConsolidateSettings
from services.deadlines.app import build_app as build_deadlines
from services.deadlines.config import DeadlinesSettings
from services.notify.app import build_app as build_notify
from services.notify.config import NotifySettings
from services.submissions.app import build_app as build_submissions
from services.submissions.config import SubmissionsSettings
from tests.support.auth import bearer

pytestmark = pytest.mark.unit


class NoteCreate(BaseModel):
    text: str
    count: int = 0


@pytest.fixture(scope="module")
def api() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.middleware("http")(require_json_body)

    @app.get("/notes", responses=problems(404))
    async def notes() -> list[str]:
        return []

    @app.post("/notes", status_code=201)
    async def create(note: NoteCreate) -> dict[str, str]:
        return {"text": note.text}

    @app.get("/mine")
    async def mine(_: SignedIn) -> dict[str, str]:
        return {}

    return app


async def send(app: FastAPI, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        return await client.request(method, path, **kwargs)


def shape(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    ApiError.model_validate(body)
    assert set(body) == {"code", "message", "details"}, body
    return body


JSON = {"Content-Type": "application/json"}


async def test_405_names_the_allowed_methods(api: FastAPI) -> None:
    response = await send(api, "DELETE", "/notes")

    assert response.status_code == 405
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}
    assert shape(response)["code"] == "method_not_allowed"


@pytest.mark.parametrize("raw", [b"", None])
async def test_an_empty_or_missing_body_says_the_body_is_missing(
    api: FastAPI, raw: bytes | None
) -> None:
    response = await send(api, "POST", "/notes", content=raw, headers=JSON)

    assert response.status_code == 422
    body = shape(response)
    assert body["code"] == "missing_body"
    assert body["message"] == "Thiếu nội dung yêu cầu (JSON)."


async def test_a_missing_field_is_named(api: FastAPI) -> None:
    response = await send(api, "POST", "/notes", json={"count": 1})

    body = shape(response)
    assert (response.status_code, body["code"]) == (422, "missing_field")
    assert body["message"] == "Thiếu thông tin bắt buộc: text."


@pytest.mark.parametrize(
    ("raw", "line", "column", "reason"),
    [
        ('{"text": "a",}', 1, 14, "tên trường phải đặt trong dấu nháy kép"),
        ('{\n  "text": "a",\n  "count" 2\n}', 3, 11, "thiếu dấu hai chấm"),
        # Columns count characters, not bytes: "Hà Nội" is 6 characters, 9 bytes.
        ('{"text": "Hà Nội" "x"}', 1, 19, "thiếu dấu phẩy"),
        ('{"text": "a"} xyz', 1, 15, "nội dung thừa"),
    ],
)
async def test_malformed_json_is_400_with_line_and_column_in_vietnamese(
    api: FastAPI, raw: str, line: int, column: int, reason: str
) -> None:
    response = await send(api, "POST", "/notes", content=raw.encode(), headers=JSON)

    assert response.status_code == 400
    body = shape(response)
    assert body["code"] == "invalid_json"
    assert f"dòng {line}, cột {column}" in body["message"]
    assert reason in body["message"]
    [detail] = body["details"]
    assert (detail["line"], detail["column"]) == (line, column)
    assert "field" not in detail, "a JSON syntax error is in no field"
    with pytest.raises(json.JSONDecodeError) as raised:
        json.loads(raw)
    assert (raised.value.lineno, raised.value.colno) == (line, column), "as json counts"


async def test_a_body_that_is_not_utf8_is_400_not_500(api: FastAPI) -> None:
    response = await send(api, "POST", "/notes", content=b'{"text": "\xff\xfe"}', headers=JSON)

    assert response.status_code == 400
    assert shape(response)["code"] == "invalid_json"


async def test_a_body_that_is_not_json_is_415(api: FastAPI) -> None:
    response = await send(api, "POST", "/notes", content=b"text=a", headers={"Content-Type": "x"})

    assert response.status_code == 415
    assert shape(response)["code"] == "unsupported_media_type"


async def test_unknown_address_and_signed_out_have_the_same_shape(api: FastAPI) -> None:
    missing = await send(api, "GET", "/nowhere")
    signed_out = await send(api, "GET", "/mine")

    assert (missing.status_code, shape(missing)["code"]) == (404, "not_found")
    assert (signed_out.status_code, shape(signed_out)["code"]) == (401, "not_signed_in")
    assert signed_out.headers["www-authenticate"].startswith("Bearer")


def test_problems_declares_the_error_body_and_a_route_specific_reason() -> None:
    declared = problems(404, 409, 429, why={409: "Kỳ báo cáo đã đóng."})

    assert set(declared) == {404, 409, 429}
    assert all(answer["model"] is ApiError for answer in declared.values())
    assert declared[409]["description"] == "Kỳ báo cáo đã đóng."
    assert declared[404]["description"].startswith("Không tìm thấy")
    assert "Retry-After" in declared[429]["headers"]


def test_the_document_adds_what_every_route_can_answer(api: FastAPI) -> None:
    app = FastAPI()
    document_answers(app)
    for route in api.router.routes:
        app.router.routes.append(route)
    paths = app.openapi()["paths"]

    listing = paths["/notes"]["get"]
    assert set(listing["responses"]) == {"200", "404", "413", "503"}
    creating = paths["/notes"]["post"]
    assert set(creating["responses"]) == {"201", "400", "413", "415", "422", "503"}
    assert "security" not in creating
    mine = paths["/mine"]["get"]
    assert set(mine["responses"]) == {"200", "401", "413", "503"}, "no role: no 403 for a GET"
    assert mine["security"] == [{"bearerToken": []}, {"sessionCookie": []}]


# --- the four services' documents ---------------------------------------------------------------

BUILDERS: dict[str, Callable[[], FastAPI]] = {
    "submissions": lambda: build_submissions(SubmissionsSettings(namespace="unit")),  # type: ignore[call-arg]
    "deadlines": lambda: build_deadlines(DeadlinesSettings(namespace="unit")),  # type: ignore[call-arg]
    "notify": lambda: build_notify(NotifySettings(namespace="unit")),  # type: ignore[call-arg]
    "consolidate": lambda: build_consolidate(ConsolidateSettings(namespace="unit")),  # type: ignore[call-arg]
}


@pytest.fixture(params=sorted(BUILDERS))
def service(request: pytest.FixtureRequest) -> FastAPI:
    return BUILDERS[request.param]()


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_error_of_every_operation_has_the_error_body(service: FastAPI) -> None:
    document = service.openapi()

    assert "HTTPValidationError" not in json.dumps(document), "FastAPI's 422 is not ours"
    for path, method, operation in operations(document):
        errors = {s: a for s, a in operation["responses"].items() if int(s) >= 400}
        assert {"413", "503"} <= set(errors), (method, path)
        for status, answer in errors.items():
            schema = answer["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ApiError"}, (method, path, status)
            assert answer["description"], (method, path, status)
        if "requestBody" in operation:
            assert {"400", "415", "422"} <= set(errors), (method, path)


def test_every_operation_that_needs_sign_in_declares_401(service: FastAPI) -> None:
    document = service.openapi()
    for path, method, operation in operations(document):
        if "security" in operation:
            assert "401" in operation["responses"], (method, path)
        if path.startswith("/api/v1/dead-letters") or path.startswith("/api/v1/outbox"):
            assert {"401", "403"} <= set(operation["responses"]), (method, path)


async def test_the_document_and_docs_are_served_without_sign_in(service: FastAPI) -> None:
    document = await send(service, "GET", "/openapi.json")
    docs = await send(service, "GET", "/docs")

    assert document.status_code == 200
    assert document.json()["openapi"].startswith("3.")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    # ... while the API itself is not: the operations route answers 401 signed out.
    refused = await send(service, "GET", "/api/v1/dead-letters")
    allowed = await send(service, "GET", "/api/v1/dead-letters", headers=bearer(Role.ADMIN))
    assert refused.status_code == 401
    assert allowed.status_code == 503, "built, not started: not ready (but signed in)"
