"""A service's app in this test's process, on the real servers: its lifespan running, an HTTP
client on it, and its database dropped at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI


@asynccontextmanager
async def serving(
    app: FastAPI, base_url: str = "http://portal"
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as http,
    ):
        try:
            yield http
        finally:
            await app.state.runtime.db.client.drop_database(app.state.runtime.db.name)
