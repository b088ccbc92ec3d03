"""A local HTTP SMS gateway for tests: a real server on a real socket that answers each
request with the next scripted status (then 200), or holds it past the client's timeout
(status ``0``); a 200 carries the next scripted body (then ``{"status": "ok"}``), as gateways
that answer 200 with an error code in JSON do. It keeps every request (headers and body)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

HOLD = 0
"""A scripted status of 0: no answer until the client gives up."""


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class SmsGatewayServer:
    def __init__(self, *statuses: int, bodies: tuple[bytes, ...] = ()) -> None:
        self.statuses = list(statuses)
        self.bodies = list(bodies)
        self.received: list[Received] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/sms/send"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    return
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.received.append(Received(headers, body))
                status = self.statuses.pop(0) if self.statuses else 200
                if status == HOLD:
                    await asyncio.sleep(30)
                    return
                if status == 200:
                    text = self.bodies.pop(0) if self.bodies else b'{"status": "ok"}'
                else:
                    text = b'{"error": "scripted"}'
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(text)}\r\n\r\n".encode()
                    + text
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
