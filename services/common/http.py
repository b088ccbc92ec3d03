"""ASGI middleware at the HTTP edge: a request body larger than the limit never reaches the app.

Checking ``Content-Length`` inside a route is not enough: a chunked body has no length, and a
route sees the body only after FastAPI has parsed and validated it (an invalid 20 MB body then
gets 422, a valid one is stored). This middleware sits in front of the app, so the answer is
413 whatever the framing and whatever the content.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 1_000_000


class BodySizeLimit:
    """Answer 413 ``payload_too_large`` for a request body over ``max_bytes``.

    A declared ``Content-Length`` over the limit is refused before a byte of the body is read.
    Any other body (chunked, or no length) is read here, counting, up to the limit: over it the
    app is never called, so nothing of a partial body can be stored; within it the app gets the
    body in one piece. Memory per request is therefore bounded by ``max_bytes``. The rest of an
    over-long body is left to the server (uvicorn reads and discards it, then keeps the
    connection), so the client gets the 413 rather than a reset connection.

    ``paths`` limits the check to these path prefixes (all paths if omitted).
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES, paths: Sequence[str] = ()
    ) -> None:
        if max_bytes < 0:
            raise ValueError("max_bytes must not be negative")
        self.app = app
        self.max_bytes = max_bytes
        self.paths = tuple(paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._applies_to(scope["path"]):
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
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
                await self._refuse(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    def _applies_to(self, path: str) -> bool:
        return not self.paths or any(path.startswith(prefix) for prefix in self.paths)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "code": "payload_too_large",
                "message": too_large_message(self.max_bytes),
                "details": [],
            },
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
    megabytes = f"{max_bytes / 1_000_000:.3f}".rstrip("0").rstrip(".").replace(".", ",")
    return f"Nội dung gửi lên quá lớn (tối đa {megabytes} MB)."


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
