"""Running one piece of work per item, a bounded number at once, and losing none of them.

A reminder to many contacts, or the retrier's batch of due notices, would otherwise wait for
one SMTP round trip after another; the SMTP pool can carry several sends at once and the
ledger writes overlap with them. Unlike ``asyncio.gather`` or a ``TaskGroup``, a failure of one
item neither cancels the others nor leaves them running unwatched: every item is finished
(sent and recorded, or scheduled for retry in the ledger) before the caller acknowledges the
event, and only then is the first error raised, so the consumer retries or dead-letters the
event and the ledger makes the items already done duplicates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


async def each_bounded(
    items: Iterable[T], limit: int, work: Callable[[T], Awaitable[None]]
) -> None:
    """``work(item)`` for every item, at most ``limit`` at once; raises the first failure
    (in item order) once all have ended, and logs the others."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    numbered = list(enumerate(items))
    queue = iter(numbered)
    failures: dict[int, Exception] = {}

    async def worker() -> None:
        # A few workers pulling from one iterator: thousands of recipients do not become
        # thousands of tasks waiting on a semaphore.
        for n, item in queue:
            try:
                await work(item)
            except Exception as error:
                failures[n] = error

    await asyncio.gather(*(worker() for _ in range(min(limit, len(numbered)))))
    if not failures:
        return
    first, *others = (failures[n] for n in sorted(failures))
    for error in others:
        log.warning("fan-out: another item failed too: %s: %s", type(error).__name__, error)
    raise first
