"""When each receipt e-mail reached Mailpit, read from its inbox API and then deleted.

Mailpit keeps 500 messages unless started with ``--max`` and silently prunes the oldest, so a
benchmark that sends thousands of receipts takes each one out as soon as it has noted it.
Only this run's messages (found by the run's own From address) are ever deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from typing import Any

import httpx

POLL_SECONDS = 0.2
RECEIPT_NO = re.compile(r"\b[A-Z]{2,}-\d{4}-\d+\b")


class MailSeen:
    def __init__(self, api: str, sender: str, *, interval: float = 0.3) -> None:
        self._client = httpx.AsyncClient(base_url=api, timeout=10)
        self._query = f"from:{sender}"
        self._interval = interval
        self.arrived: dict[str, list[float]] = {}
        """Receipt number -> when Mailpit received each of its messages (Unix seconds)."""
        self.unmatched = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(httpx.HTTPError):
                await self.collect()
            await asyncio.sleep(self._interval)

    async def collect(self) -> int:
        """Note and delete what arrived since the last call; returns how many."""
        response = await self._client.get(
            "/api/v1/search", params={"query": self._query, "limit": 500}
        )
        response.raise_for_status()
        messages = response.json()["messages"]
        for message in messages:
            created = _instant(message["Created"])
            number = await self._receipt_number(message)
            if number:
                self.arrived.setdefault(number, []).append(created)
            else:
                self.unmatched += 1
        if messages:
            ids = [m["ID"] for m in messages]
            await self._client.request("DELETE", "/api/v1/messages", json={"IDs": ids})
        return len(messages)

    async def _receipt_number(self, message: dict[str, Any]) -> str | None:
        """The receipt number a receipt carries: in the listing's snippet when it is near the
        top, else in the message's text, read on its own (a receipt is text + HTML, and the
        snippet may stop before the number)."""
        found = RECEIPT_NO.search(message.get("Snippet", ""))
        if found is None:
            response = await self._client.get(f"/api/v1/message/{message['ID']}")
            response.raise_for_status()
            found = RECEIPT_NO.search(response.json().get("Text", ""))
        return found.group(0) if found else None

    def missing(self, wanted: dict[str, int]) -> int:
        """How many of the wanted messages (receipt number -> how many) have not arrived."""
        return sum(max(0, n - len(self.arrived.get(r, ()))) for r, n in wanted.items())

    async def wait_for(self, wanted: dict[str, int], within: float) -> bool:
        """True once every wanted message arrived; False when ``within`` seconds ran out.

        Only the wanted receipts count: late mail of an earlier step must not end the wait.
        """
        for _ in range(int(within / POLL_SECONDS)):  # the poller fills ``arrived`` meanwhile
            if not self.missing(wanted):
                break
            await asyncio.sleep(POLL_SECONDS)
        return not self.missing(wanted)

    def reset(self) -> None:
        self.arrived.clear()
        self.unmatched = 0

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(httpx.HTTPError):
            await self.collect()  # leave none of this run's messages behind
        await self._client.aclose()


def _instant(text: str) -> float:
    # Mailpit writes "2026-11-27T17:25:41.709Z"; fromisoformat takes at most 6 decimals.
    head, _, fraction = text.rstrip("Z").partition(".")
    moment = dt.datetime.fromisoformat(head).replace(tzinfo=dt.UTC)
    return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)
