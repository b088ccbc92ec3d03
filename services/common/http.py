"""ASGI middleware at the HTTP edge: a request body larger than the limit never reaches the app.

Checking ``Content-Length`` inside a route is not enough: a chunked body has no length, and a
route sees the body only after FastAPI has parsed and validated it (an invalid 20 MB body then
gets 422, a valid one is stored). This middleware sits in front of the app, so the answer is
413 whatever the framing and whatever the content.

Uploads are the exception: a 20 MB file must not sit in memory, so a :class:`StreamedRoute`
gets its own limit and its body is handed to the route as it arrives, counted on the way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.common.errors import ApiProblem

DEFAULT_MAX_BODY_BYTES = 1_000_000


@dataclass(frozen=True)
class StreamedRoute:
    """A route that reads its body as a stream (an upload), with its own limit.

    ``path`` is a regular expression the whole request path must match. Its requests skip the
    global limit and the JSON-only check (the route checks its own media type). A declared
    ``Content-Length`` over ``max_bytes`` is refused before a byte is read; a body without one
    is passed on as it arrives and counted: reading past ``max_bytes`` raises
    :class:`BodyTooLarge` inside the route, which stops there, and the answer is 413.
    """

    path: str
    max_bytes: int
    methods: frozenset[str] = field(default_factory=lambda: frozenset({"POST"}))
    stated_bytes: int | None = None
    """The limit the 413 message names, if not ``max_bytes`` (a file's limit, when
    ``max_bytes`` adds the form's framing to it)."""

    def matches(self, scope: Scope) -> bool:
        return (
            scope.get("method") in self.methods
            and re.fullmatch(self.path, scope["path"]) is not None
        )

    @property
    def message(self) -> str:
        return too_large_message(self.stated_bytes or self.max_bytes)


class BodyTooLarge(ApiProblem):
    """A streamed body passed its route's limit while the route was reading it."""

    def __init__(self, route: StreamedRoute) -> None:
        super().__init__(413, "payload_too_large", route.message)


class BodySizeLimit:
    """Answer 413 ``payload_too_large`` for a request body over ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before a byte of the body is read.
    Any other body (chunked, or no length) is read here, counting, up to the limit: over it the
    app is never called, so nothing of a partial body can be stored; within it the app gets the
    body in one piece. Memory per request is therefore bounded by ``max_bytes``. The rest of an
    over-long body is left to the server (uvicorn reads and discards it, then keeps the
    connection), so the client gets the 413 rather than a reset connection.

    ``paths`` limits the check to these path prefixes (all paths if omitted); ``streamed``
    routes have their own limit and are not buffered (see :class:`StreamedRoute`).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = DEFAULT_MAX_BODY_BYTES,
        paths: Sequence[str] = (),
        streamed: Sequence[StreamedRoute] = (),
    ) -> None:
        if max_bytes < 0 or any(r.max_bytes < 0 for r in streamed):
            raise ValueError("max_bytes must not be negative")
        self.app = app
        self.max_bytes = max_bytes
        self.paths = tuple(paths)
        self.streamed = tuple(streamed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = next((r for r in self.streamed if r.matches(scope)), None)
        if route is not None:
            await self._stream(route, scope, receive, send)
            return
        if not self._applies_to(scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, too_large_message(self.max_bytes))
            return
        if declared is not None:
            # The server frames a body with a Content-Length: it cannot deliver more than that.
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left: nobody to answer, nothing to pass on
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(send, too_large_message(self.max_bytes))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    def _applies_to(self, path: str) -> bool:
        return not self.paths or any(path.startswith(prefix) for prefix in self.paths)

    async def _stream(
        self, route: StreamedRoute, scope: Scope, receive: Receive, send: Send
    ) -> None:
        declared = _content_length(scope)
        if declared is not None and declared > route.max_bytes:
            await _refuse(send, route.message)
            return
        size = 0
        passed = started = False

        async def counting() -> Message:
            nonlocal size, passed
            message = await receive()
            size += len(message.get("body", b""))
            if size > route.max_bytes:
                passed = True
                raise BodyTooLarge(route)
            return message

        async def watching(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, watching)
        except Exception:
            # A route with the project's error handlers has answered 413 already. Otherwise the
            # error comes back here, possibly wrapped (in an ExceptionGroup by a task group on
            # the way, as BaseHTTPMiddleware's), and the answer is given here.
            if not passed or started:
                raise
            await _refuse(send, route.message)


HttpMiddleware = Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]


def except_streamed(routes: Sequence[StreamedRoute], check: HttpMiddleware) -> HttpMiddleware:
    """``check`` (e.g. the JSON-only rule) for every request but those of ``routes``."""
    routes = tuple(routes)

    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if any(route.matches(request.scope) for route in routes):
            return await call_next(request)
        return await check(request, call_next)

    return middleware


async def _refuse(send: Send, message: str) -> None:
    body = json.dumps(
        {"code": "payload_too_large", "message": message, "details": []},
        ensure_ascii=False,
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def too_large_message(max_bytes: int) -> str:
    """'Nội dung gửi lên quá lớn (tối đa 1 MB).' with the decimal comma of Vietnamese."""
    return f"Nội dung gửi lên quá lớn (tối đa {megabytes(max_bytes)})."


def megabytes(size: int) -> str:
    """'2,5 MB': decimal megabytes, as people and the settings count them."""
    number = f"{size / 1_000_000:.3f}".rstrip("0").rstrip(".").replace(".", ",")
    return f"{number} MB"


def _content_length(scope: Scope) -> int | None:
    """The declared body length; None if there is none (chunked) or it is not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands over the buffered body once, then defers to the server's."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
