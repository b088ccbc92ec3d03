"""Late causes waiting for the amendment that counts them.

A submission projected after the close (or an office decision learnt after it) must reach the
province in a new version of the closing report. Each version is rendered (DOCX, XLSX, PDF:
seconds each), so one version per late cause would make a backlog of forty late reports
take minutes to drain and hand the province forty versions. Instead the handler only records
the cause (durably, before its message is acknowledged) and wakes a background pass that
records one version counting every cause waiting, then forgets them: causes that arrive while
a version renders are counted together by the next.

A crash between recording the version and forgetting its causes is harmless: the next pass
consolidates the same submissions, finds nothing new and forgets them then.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

GATHER = 0.5
"""How long a woken pass waits for the causes of a burst to arrive together, in seconds."""
POLL = 30.0
"""A pass without a wake-up: causes recorded by a replica that died before amending."""


@dataclass(frozen=True)
class LateCause:
    """Something learnt after the close that the closing report must count."""

    period_id: str
    key: str
    """What it is: ``submission <id>`` or ``<EventType> <event id>``; unique per cause."""
    correlation_id: uuid.UUID
    causation_id: uuid.UUID


class PendingAmendments:
    """The causes this process knows to be waiting; the ``baocao_amendments_pending`` gauge.

    Kept as a set of keys so that a redelivered cause, or one read back from the store on a
    pass, is counted once whatever the interleaving of handlers and passes.
    """

    def __init__(self) -> None:
        self._keys: set[str] = set()
        self._nudge = asyncio.Event()

    def __len__(self) -> int:
        return len(self._keys)

    def wanted(self, keys: Iterable[str]) -> None:
        """Causes just recorded: the pass runs soon."""
        self._keys.update(keys)
        self._nudge.set()

    def found(self, keys: Iterable[str]) -> None:
        """Causes the pass read back (some perhaps recorded by a process that died)."""
        self._keys.update(keys)

    def settled(self, keys: Iterable[str]) -> None:
        self._keys.difference_update(keys)

    async def nudged(self, within: float = POLL) -> None:
        """Return when a cause was recorded since the last call (after ``GATHER``) or after
        ``within`` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._nudge.wait()
                await asyncio.sleep(GATHER)
        self._nudge.clear()
