"""A minimal HTTP/1.1 keep-alive client for load generation.

On a 2-core machine the load generator competes with the service it measures; httpx spends
several times more CPU per request than this. It speaks only what our services answer: a
status line, headers and a ``Content-Length`` body, to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any


class HttpError(Exception):
    """The server answered something this client does not understand, or closed early."""


IDLE_SECONDS = 4.0
"""uvicorn closes a keep-alive connection idle for 5 s: open a new one before that happens."""


class Connection:
    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self._port = port
        self._headers = headers or {}
        """Sent with every request (the benchmark's sign-in), unless a request overrides."""
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._used = 0.0

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        if self._writer is not None and time.monotonic() - self._used > IDLE_SECONDS:
            await self.close()
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self._port)
        assert self._reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self._port}\r\n"
        for name, value in {**self._headers, **(headers or {})}.items():
            head += f"{name}: {value}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self._writer.write(head.encode("latin-1") + b"\r\n" + body)
        try:
            status_line = await self._reader.readuntil(b"\r\n")
            status = int(status_line.split(b" ", 2)[1])
            length, close = 0, False
            while (line := await self._reader.readuntil(b"\r\n")) != b"\r\n":
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
                elif name == b"transfer-encoding":
                    raise HttpError(f"{method} {path}: chunked answers are not supported")
            payload = await self._reader.readexactly(length) if length else b""
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            await self.close()
            raise HttpError(f"{method} {path}: {error}") from error
        self._used = time.monotonic()
        if close:
            await self.close()
        return status, payload

    async def post_json(
        self, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        status, payload = await self.request("POST", path, body, headers)
        return status, json.loads(payload) if payload else None

    async def get_json(self, path: str) -> Any:
        status, payload = await self.request("GET", path)
        if status != 200:
            raise HttpError(f"GET {path}: {status} {payload[:200]!r}")
        return json.loads(payload)

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(ConnectionError):
                await self._writer.wait_closed()
        self._reader = self._writer = None
