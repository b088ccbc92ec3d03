"""Where "now" comes from: injected everywhere a decision depends on time."""

from __future__ import annotations

import datetime as dt
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class ShiftedClock:
    """Starts at a chosen instant and runs at real speed: rehearsals and end-to-end tests."""

    def __init__(self, start: dt.datetime) -> None:
        self._start = start.astimezone(dt.UTC)
        self._began = time.monotonic()

    def now(self) -> dt.datetime:
        return self._start + dt.timedelta(seconds=time.monotonic() - self._began)


class FixedClock:
    """Stands still until moved: unit and integration tests."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at.astimezone(dt.UTC)

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, delta: dt.timedelta) -> None:
        self.at += delta


def clock_from(start: dt.datetime | None) -> Clock:
    return ShiftedClock(start) if start else SystemClock()
