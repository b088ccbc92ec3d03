"""Reading Mailpit's inbox API (messages are found by a search, never by position)."""

from __future__ import annotations

from typing import Any

import httpx


async def search(api: str, query: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        response = await client.get("/api/v1/search", params={"query": query, "limit": 200})
        response.raise_for_status()
        return list(response.json()["messages"])


async def message(api: str, message_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        response = await client.get(f"/api/v1/message/{message_id}")
        response.raise_for_status()
        return dict(response.json())


async def raw(api: str, message_id: str) -> bytes:
    """The message as Mailpit received it, for a strict parse by the test."""
    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        response = await client.get(f"/api/v1/message/{message_id}/raw")
        response.raise_for_status()
        return response.content
