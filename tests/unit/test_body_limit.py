"""Issue 7: a body over the limit is refused with 413 whatever its framing, and never stored.

Chunked framing only exists on a real connection, so most cases run against a real uvicorn
server on 127.0.0.1 (an ephemeral port; no other server is needed). The app behind the
middleware is a FastAPI route with the project's error handlers that records what it stored.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request
from pydantic import BaseModel
from starlette.types import Message

from services.common.errors import install_error_handlers, require_json_body
from services.common.http import BodySizeLimit, StreamedRoute, except_streamed, too_large_message

pytestmark = pytest.mark.unit

LIMIT = 1_000_000
MB2 = 2_000_000


class Note(BaseModel):
    text: str


def make_app(stored: list[str]) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.middleware("http")(require_json_body)

    @app.post("/api/v1/notes", status_code=201)
    async def create(note: Note) -> dict[str, int]:
        stored.append(note.text)
        return {"length": len(note.text)}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(BodySizeLimit, max_bytes=LIMIT, paths=["/api/"])
    return app


def valid_json(size: int) -> bytes:
    """A valid ``Note`` body of exactly ``size`` bytes."""
    frame = b'{"text": ""}'
    return b'{"text": "' + b"a" * (size - len(frame)) + b'"}'


def in_chunks(body: bytes, chunk: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), chunk):
        yield body[start : start + chunk]


async def async_chunks(body: bytes, chunk: int = 64 * 1024) -> AsyncIterator[bytes]:
    for piece in in_chunks(body, chunk):
        yield piece


class RealServer:
    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RealServer:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *_: object) -> None:
        self.server.should_exit = True
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)
        self.sock.close()


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, list[str]]]:
    stored: list[str] = []
    async with RealServer(make_app(stored)) as server:
        yield server.url, stored


JSON = {"Content-Type": "application/json"}


def assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text[:300]
    assert response.json() == {
        "code": "payload_too_large",
        "message": "Nội dung gửi lên quá lớn (tối đa 1 MB).",
        "details": [],
    }


async def test_chunked_2mb_valid_body_is_refused_and_not_stored(
    served: tuple[str, list[str]],
) -> None:
    url, stored = served
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        request = client.build_request(
            "POST", "/api/v1/notes", content=async_chunks(valid_json(MB2)), headers=JSON
        )
        assert request.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in request.headers
        assert_413(await client.send(request))
        # the connection (or a new one) still serves the next request
        small = await client.post("/api/v1/notes", json={"text": "sau đó"})
        assert small.status_code == 201
    assert stored == ["sau đó"]


@pytest.mark.parametrize("size", [MB2, 20_000_000])
async def test_invalid_body_over_the_limit_is_413_not_422(
    served: tuple[str, list[str]], size: int
) -> None:
    url, stored = served
    invalid = b"{" + b"x" * (size - 1)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        declared = await client.post("/api/v1/notes", content=invalid, headers=JSON)
        chunked = await client.post("/api/v1/notes", content=async_chunks(invalid), headers=JSON)
    assert_413(declared)
    assert_413(chunked)
    assert stored == []


async def test_a_body_at_the_limit_passes_whole_and_one_byte_more_does_not(
    served: tuple[str, list[str]],
) -> None:
    url, stored = served
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        at_limit = await client.post(
            "/api/v1/notes", content=async_chunks(valid_json(LIMIT), 4096), headers=JSON
        )
        over = await client.post(
            "/api/v1/notes", content=async_chunks(valid_json(LIMIT + 1), 4096), headers=JSON
        )
        declared = await client.post("/api/v1/notes", content=valid_json(LIMIT), headers=JSON)
    assert at_limit.status_code == 201, at_limit.text[:300]
    assert at_limit.json() == {"length": LIMIT - len(b'{"text": ""}')}
    assert_413(over)
    assert declared.status_code == 201
    assert [len(s) for s in stored] == [LIMIT - 12, LIMIT - 12]


async def test_small_chunked_body_reaches_the_app_intact(served: tuple[str, list[str]]) -> None:
    url, stored = served
    text = "Tổ chức 4 buổi quán triệt Nghị quyết 35-NQ/TW. " * 50
    body = json.dumps({"text": text}, ensure_ascii=False).encode()
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.post("/api/v1/notes", content=async_chunks(body, 7), headers=JSON)
    assert response.status_code == 201, response.text
    assert stored == [text]


async def test_paths_outside_the_prefix_are_not_checked(served: tuple[str, list[str]]) -> None:
    url, _ = served
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200


# --- the ASGI contract directly: what is (not) read, what the app (never) sees --------------


async def call(
    middleware: BodySizeLimit, headers: list[tuple[bytes, bytes]], messages: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], int]:
    """Run one request; returns what was sent and how many body messages were read."""
    sent: list[dict[str, Any]] = []
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        if reads > len(messages):
            return {"type": "http.disconnect"}
        return messages[reads - 1]

    async def send(message: Message) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": "POST", "path": "/api/v1/notes", "headers": headers}
    await middleware(scope, receive, send)
    return sent, reads


class Recorder:
    """An ASGI app that reads the whole body and answers 201, recording what it received."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def test_declared_length_over_the_limit_is_refused_before_reading_the_body() -> None:
    app = Recorder()
    sent, reads = await call(
        BodySizeLimit(app, max_bytes=10),
        [(b"content-length", b"11"), (b"content-type", b"application/json")],
        [{"type": "http.request", "body": b"x" * 11, "more_body": False}],
    )
    assert reads == 0
    assert app.bodies == []
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["code"] == "payload_too_large"


async def test_streamed_body_over_the_limit_never_reaches_the_app() -> None:
    app = Recorder()
    chunks = [{"type": "http.request", "body": b"x" * 4, "more_body": True} for _ in range(5)]
    sent, reads = await call(BodySizeLimit(app, max_bytes=10), [], chunks)
    assert reads == 3  # stopped as soon as the limit was passed (4 + 4 + 4 > 10)
    assert app.bodies == []
    assert sent[0]["status"] == 413


async def test_streamed_body_within_the_limit_is_handed_over_in_one_piece() -> None:
    app = Recorder()
    chunks = [
        {"type": "http.request", "body": b"ab", "more_body": True},
        {"type": "http.request", "body": b"cd", "more_body": False},
    ]
    sent, _ = await call(BodySizeLimit(app, max_bytes=4), [], chunks)
    assert app.bodies == [b"abcd"]
    assert sent[0]["status"] == 201


async def test_a_client_that_leaves_mid_body_gets_nothing_and_the_app_is_not_called() -> None:
    app = Recorder()
    sent, _ = await call(
        BodySizeLimit(app, max_bytes=100),
        [],
        [{"type": "http.request", "body": b"ab", "more_body": True}],
    )
    assert app.bodies == []
    assert sent == []


def test_the_message_states_the_limit_in_megabytes() -> None:
    assert too_large_message(1_000_000) == "Nội dung gửi lên quá lớn (tối đa 1 MB)."
    assert too_large_message(2_500_000) == "Nội dung gửi lên quá lớn (tối đa 2,5 MB)."


# --- the submissions service itself -------------------------------------------------------

SEED = Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"


async def test_submissions_app_refuses_a_chunked_2mb_report_with_413() -> None:
    """Before issue 7 this body reached validation (422/503) instead of 413."""
    from services.submissions.app import build_app
    from services.submissions.config import SubmissionsSettings

    app = build_app(SubmissionsSettings(namespace=f"t{uuid.uuid4().hex[:8]}", plans=str(SEED)))
    report = {
        "period_id": "kh-nq35-ngoc-hoi.2026.hang-nam",
        "unit_id": "xa-bo-y",
        "tasks": [
            {
                "task_id": "ii-1-1-tuyen-truyen-giao-duc",
                "status": "completed",
                "results": "a" * MB2,
            }
        ],
    }
    body = json.dumps(report).encode()
    transport = httpx.ASGITransport(app=app)  # no lifespan: nothing may be stored anyway
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(
            "/api/v1/submissions", content=async_chunks(body), headers=JSON
        )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


# --- a streamed route (uploads): its own limit, the body passed on as it arrives -----------

UPLOAD = StreamedRoute(r"/api/v1/units/[^/]+/files", max_bytes=10)


class Streamer:
    """An ASGI app that reads the body message by message, recording each as it comes."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            self.log.append(f"app got {len(message.get('body', b''))}")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b""})


async def call_path(
    middleware: BodySizeLimit,
    path: str,
    headers: list[tuple[bytes, bytes]],
    messages: list[dict[str, Any]],
    log: list[str],
    method: str = "POST",
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    queue = list(messages)

    async def receive() -> dict[str, Any]:
        if not queue:
            return {"type": "http.disconnect"}
        log.append("read")
        return queue.pop(0)

    async def send(message: Message) -> None:
        sent.append(dict(message))

    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    await middleware(scope, receive, send)
    return sent


def body_messages(*sizes: int) -> list[dict[str, Any]]:
    return [
        {"type": "http.request", "body": b"x" * n, "more_body": i < len(sizes) - 1}
        for i, n in enumerate(sizes)
    ]


async def test_a_streamed_route_gets_its_body_as_it_arrives_not_buffered() -> None:
    log: list[str] = []
    middleware = BodySizeLimit(Streamer(log), max_bytes=2, streamed=[UPLOAD])
    sent = await call_path(middleware, "/api/v1/units/a/files", [], body_messages(4, 4), log)
    # Each message reaches the app before the next is read; 8 bytes pass a global limit of 2.
    assert log == ["read", "app got 4", "read", "app got 4"]
    assert sent[0]["status"] == 201


async def test_a_streamed_route_refuses_a_declared_length_over_its_limit_unread() -> None:
    log: list[str] = []
    middleware = BodySizeLimit(Streamer(log), max_bytes=100, streamed=[UPLOAD])
    sent = await call_path(
        middleware, "/api/v1/units/a/files", [(b"content-length", b"11")], body_messages(11), log
    )
    assert log == []  # not a byte read, the app never called
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["code"] == "payload_too_large"


async def test_a_streamed_body_over_the_limit_stops_the_route_mid_read_with_413() -> None:
    log: list[str] = []
    middleware = BodySizeLimit(Streamer(log), max_bytes=100, streamed=[UPLOAD])
    sent = await call_path(middleware, "/api/v1/units/a/files", [], body_messages(4, 4, 4, 4), log)
    # The third message passes 10 bytes: the route never sees it, nothing more is read.
    assert log == ["read", "app got 4", "read", "app got 4", "read"]
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["message"] == too_large_message(10)


async def test_other_paths_and_methods_keep_the_global_limit() -> None:
    log: list[str] = []
    middleware = BodySizeLimit(Streamer(log), max_bytes=5, streamed=[UPLOAD])
    for path, method in (("/api/v1/notes", "POST"), ("/api/v1/units/a/files", "PUT")):
        sent = await call_path(middleware, path, [], body_messages(4, 4), log, method=method)
        assert sent[0]["status"] == 413
    assert "app got 4" not in log


def test_the_message_states_the_file_limit_not_the_framing() -> None:
    route = StreamedRoute("/x", max_bytes=20_065_536, stated_bytes=20_000_000)
    assert route.message == "Nội dung gửi lên quá lớn (tối đa 20 MB)."


def upload_app(stored: list[int]) -> FastAPI:
    """The project's middleware stack with a JSON route and a streamed upload route."""
    app = FastAPI()
    install_error_handlers(app)
    route = StreamedRoute(r"/api/v1/units/[^/]+/files", max_bytes=3 * LIMIT)
    app.middleware("http")(except_streamed([route], require_json_body))

    @app.post("/api/v1/notes", status_code=201)
    async def create(note: Note) -> dict[str, int]:
        return {"length": len(note.text)}

    @app.post("/api/v1/units/{unit}/files", status_code=201)
    async def upload(unit: str, request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        stored.append(size)
        return {"size": size}

    app.add_middleware(BodySizeLimit, max_bytes=LIMIT, paths=["/api/"], streamed=[route])
    return app


async def test_uploads_on_a_real_server_pass_the_json_rule_and_their_own_limit() -> None:
    stored: list[int] = []
    octets = {"Content-Type": "application/octet-stream"}
    async with (
        RealServer(upload_app(stored)) as server,
        httpx.AsyncClient(base_url=server.url, timeout=60) as client,
    ):
        fits = await client.post(
            "/api/v1/units/a/files", content=async_chunks(b"x" * MB2), headers=octets
        )
        over = await client.post(
            "/api/v1/units/a/files", content=async_chunks(b"x" * (3 * LIMIT + 1)), headers=octets
        )
        declared = await client.post(
            "/api/v1/units/a/files", content=b"x" * (3 * LIMIT + 1), headers=octets
        )
        not_json = await client.post("/api/v1/notes", content=b"x", headers=octets)
        json_over = await client.post(
            "/api/v1/notes", content=async_chunks(valid_json(MB2)), headers=JSON
        )
        after = await client.post("/api/v1/units/a/files", content=b"abc", headers=octets)
    assert fits.status_code == 201, fits.text
    assert fits.json() == {"size": MB2}
    assert over.status_code == 413, over.text
    assert over.json()["code"] == "payload_too_large"
    assert declared.status_code == 413
    assert not_json.status_code == 415  # the JSON rule still holds everywhere else
    assert json_over.status_code == 413
    assert after.status_code == 201  # the connection (or a new one) serves the next request
    assert stored == [MB2, 3]
