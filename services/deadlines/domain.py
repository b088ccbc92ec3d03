"""What the deadlines scheduler must announce at a given moment: pure decisions, no I/O.

The scheduler is level-triggered: every scan asks "given the plan, who has reported and the time
now, which announcements are due?" and gets the full list, each with a deterministic key. The
caller records the keys it has not recorded before, so a scan repeated after a crash or a restart
emits nothing twice, and a scan after downtime catches up without replaying stale reminders.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, TypeVar

from contracts.envelope import Event
from contracts.events import (
    DeadlineApproaching,
    DeadlineOverdue,
    DeadlineSummary,
    PeriodClosed,
    PeriodOpened,
)
from contracts.plan import Plan
from contracts.plan.workdays import WorkingCalendar
from services.common.periods import Period
from services.deadlines.ladder import RungAt, rungs

PRODUCER = "deadlines"
E = TypeVar("E", bound=Event)
_IDS = uuid.UUID("6f1c8e0a-4b7d-5c1e-9a52-3d0b7e6f2a91")
"""Namespace of the name-based UUIDs below; changing it would change every id we derive."""


class EmissionKind(StrEnum):
    OPENED = "opened"
    REMINDER = "reminder"
    OVERDUE = "overdue"
    CLOSED = "closed"
    SUMMARY = "summary"


@dataclass(frozen=True, slots=True)
class Emission:
    """An event that is due, under the key that makes it happen once."""

    key: str
    kind: EmissionKind
    period_id: str
    unit_id: str | None
    event: Event
    skipped: tuple[str, ...] = ()
    """Keys of earlier rungs this one supersedes (passed while no scan ran): recorded as
    skipped, never sent, if they were not decided before."""


@dataclass(frozen=True)
class UnitDue:
    """An extension office staff approved: the unit's own due and lock instants."""

    due_at: dt.datetime
    closes_at: dt.datetime
    decided_at: dt.datetime | None = field(default=None, compare=False)
    """When it was approved: the moved ladder's rungs before it are not sent."""


@dataclass(frozen=True)
class Reopened:
    """A filing exception office staff granted: the unit may file until ``until``, past the
    lock; its ladder's overdue rungs go on until then."""

    until: dt.datetime
    granted_at: dt.datetime | None = None


def unit_period(period: Period, extension: UnitDue | None) -> Period:
    """The period as one unit lives it: with its extension's due and lock, if it has one."""
    if extension is None:
        return period
    return replace(
        period, due_at=extension.due_at, closes_at=max(extension.closes_at, period.closes_at)
    )


def own_period(period: Period, extension: UnitDue | None, reopen: Reopened | None) -> Period:
    """The period as one unit lives it, its filing exception included: the ladder's overdue
    rungs go on until the exception ends."""
    own = unit_period(period, extension)
    if reopen is not None and reopen.until > own.closes_at:
        own = replace(own, closes_at=reopen.until)
    return own


LadderMemo = dict[tuple[object, ...], list[RungAt]]
"""Ladders placed, and rungs passed, during one scan (see :func:`passed_rungs`)."""


class NameIds:
    """``uuid.uuid5(namespace, prefix + name)`` for many names: the namespace and the prefix are
    hashed once, and each name continues a copy of that hash (half the cost of ``uuid5``,
    which a rung day pays 100,000 times)."""

    def __init__(self, namespace: uuid.UUID, prefix: str) -> None:
        self._head = hashlib.sha1(namespace.bytes + prefix.encode(), usedforsecurity=False)

    def __call__(self, name: str) -> uuid.UUID:
        digest = self._head.copy()
        digest.update(name.encode())
        # What ``uuid.UUID(bytes=..., version=5)`` does to the first 16 bytes of the hash.
        return uuid.UUID(int=int.from_bytes(digest.digest()[:16], "big") & _V5_CLEAR | _V5_SET)

    def hex(self, name: str) -> str:
        """The same id as 32 hex digits, for a model to parse into the same ``uuid.UUID``
        (pydantic's parser is cheaper than ``uuid.UUID``'s constructor)."""
        digest = self._head.copy()
        digest.update(name.encode())
        h = digest.hexdigest()
        return f"{h[:12]}5{h[13:16]}{_V5_VARIANT[h[16]]}{h[17:32]}"


_V5_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_V5_SET = (0x8000 << 48) | (5 << 76)
_V5_VARIANT = {f"{n:x}": f"{n & 0x3 | 0x8:x}" for n in range(16)}
"""The variant digit's RFC 4122 value (binary 10xx) for each hex digit of the hash."""
_PERIOD_IDS = NameIds(_IDS, "period:")
# Name-based, so a decision computed twice (two scans, two replicas) is the same event and
# consumers deduplicating by event_id see one even if it were ever recorded twice.
event_id_for = NameIds(_IDS, "emission:")


def period_correlation_id(period_id: str) -> uuid.UUID:
    """The correlation id every event of one period's lifecycle shares."""
    return _PERIOD_IDS(period_id)


def is_relevant(period: Period, now: dt.datetime, catch_up: dt.timedelta) -> bool:
    """Started, and not closed longer ago than ``catch_up``."""
    return period.opens_at <= now and now - period.closes_at <= catch_up


def due_emissions(*args: Any, **options: Any) -> list[Emission]:
    """Every announcement due, oldest first: :func:`emissions_due` (same arguments) held in a
    list and sorted, for callers that want them all at once (a scan does not: see there)."""
    return sorted(emissions_due(*args, **options), key=publish_order)


def publish_order(emission: Emission) -> tuple[dt.datetime, str]:
    """Oldest first, as the relay publishes its outbox (``Outbox.waiting``), then by key."""
    return emission.event.occurred_at, emission.key


def emissions_due(
    plan: Plan,
    periods: Iterable[Period],
    submitted: Mapping[str, Set[str]],
    now: dt.datetime,
    *,
    catch_up: dt.timedelta,
    extended: Mapping[str, Mapping[str, UnitDue]] | None = None,
    calendar: WorkingCalendar | None = None,
    returned: Mapping[str, Mapping[str, dt.datetime]] | None = None,
    reopened: Mapping[str, Mapping[str, Reopened]] | None = None,
    decided: Callable[[str], bool] | None = None,
    unit_ids: Sequence[str] | None = None,
) -> Iterator[Emission]:
    """Every announcement due at ``now``, made one at a time as the caller asks for the next.

    ``submitted`` maps a period id to the units that have reported for it; ``extended`` a
    period id to the units with an approved extension: their reminders count down to their own
    due instant, and their overdue notice waits for it. A kind with a ``reminders`` ladder
    counts in working days on ``calendar`` (the plan's, ``contracts.plan.workdays``), and a
    unit in ``returned`` (period id → unit → when its report was returned, not sent again
    since) re-enters that ladder from the return on; a unit in ``reopened`` (a filing
    exception) keeps getting its overdue rungs past the lock, until the exception ends.
    A rung whose key ``decided`` knows is left out before its event is built (the steady
    state of a scan: most units' latest rung was sent at an earlier scan). ``unit_ids``: the
    plan's reporting units, in its order, if the caller has them already.

    Period by period: its opening, its units' announcements in the plan's unit order, its
    summary (which lists who owes, so it comes after them), its closing. Not sorted by time,
    and need not be: the relay publishes what its outbox holds oldest first whatever order it
    was stored in, and a period's opening still comes before its units' announcements, so a
    relay run in the middle of a scan cannot publish a rung of a period not yet announced.
    So a scan stores each chunk as it comes and never holds them all: on a rung day every
    unit of a province owes one, 100,000 events.
    """
    calendar = calendar or WorkingCalendar()
    memo: LadderMemo = {}
    if unit_ids is None:
        unit_ids = [u.id for u in plan.reporting_units()]
    for period in periods:
        if is_relevant(period, now, catch_up):
            yield from _period_emissions(
                plan,
                period,
                unit_ids,
                submitted.get(period.id, frozenset()),
                now,
                calendar=calendar,
                moved=(extended or {}).get(period.id, {}),
                back=(returned or {}).get(period.id, {}) if period.kind.reminders else {},
                exceptions=(reopened or {}).get(period.id, {}) if period.kind.reminders else {},
                memo=memo,
                decided=decided,
            )


def _period_emissions(
    plan: Plan,
    period: Period,
    unit_ids: Sequence[str],
    reported: Set[str],
    now: dt.datetime,
    *,
    calendar: WorkingCalendar,
    moved: Mapping[str, UnitDue],
    back: Mapping[str, dt.datetime],
    exceptions: Mapping[str, Reopened],
    memo: LadderMemo,
    decided: Callable[[str], bool] | None,
) -> Iterator[Emission]:
    yield _opened(period, unit_ids)
    owing: list[tuple[str, dt.datetime, bool]] = []  # unit, own due, returned
    # Most units live the period as it is (no extension, return or exception): their latest
    # rung, its key but for the unit and its event but for the unit are the period's, worked
    # out once (a rung day is 100,000 of them).
    common = passed_rungs(period, plan, calendar, now, memo=memo)
    shared = SharedRung(period, common) if common and meaningful(common[-1], period, now) else None
    for unit_id in unit_ids:
        returned_at = back.get(unit_id)
        if unit_id in reported and returned_at is None:
            continue
        if (
            period.kind.reminders is not None
            and returned_at is None
            and unit_id not in moved
            and unit_id not in exceptions
        ):
            owing.append((unit_id, period.due_at, False))
            if shared is not None:
                key = shared.key(unit_id)
                if decided is None or not decided(key):  # decided: sent at an earlier scan
                    yield shared.emission(unit_id, key)
            continue
        emission = _own_terms(
            plan,
            period,
            unit_id,
            now,
            calendar,
            owing,
            memo,
            decided,
            extension=moved.get(unit_id),
            returned_at=returned_at,
            reopen=exceptions.get(unit_id),
        )
        if emission is not None:
            yield emission
    summary = _summary(plan, period, calendar, now, owing, len(unit_ids), memo, decided)
    if summary is not None:
        yield summary
    if now >= period.closes_at:
        yield _closed(period)


def _own_terms(
    plan: Plan,
    period: Period,
    unit_id: str,
    now: dt.datetime,
    calendar: WorkingCalendar,
    owing: list[tuple[str, dt.datetime, bool]],
    memo: LadderMemo,
    decided: Callable[[str], bool] | None,
    *,
    extension: UnitDue | None,
    returned_at: dt.datetime | None,
    reopen: Reopened | None,
) -> Emission | None:
    """The announcement due to a unit with terms of its own (an extension, a returned report,
    a filing exception) or of a kind without a ladder; it joins ``owing`` if it has a ladder.
    A rung ``decided`` knows is left out before its event is built."""
    own = own_period(period, extension, reopen)
    was_moved = extension is not None
    if period.kind.reminders is None:
        reminder = latest_reminder(own, now)
        if reminder is not None:
            return _reminder(own, unit_id, reminder, moved=was_moved)
        if own.due_at <= now < own.closes_at:
            return _overdue(own, unit_id, moved=was_moved)
        return None
    owing.append((unit_id, own.due_at, returned_at is not None))
    since = [t for t in (extension and extension.decided_at, returned_at) if t]
    if reopen is not None and reopen.granted_at and reopen.granted_at > period.closes_at:
        since.append(reopen.granted_at)  # the rungs while it was locked stay unsent
    passed = passed_rungs(own, plan, calendar, now, since=max(since, default=None), memo=memo)
    if not passed or not meaningful(passed[-1], own, now):
        return None
    key = rung_key(own, unit_id, passed[-1], moved=was_moved, returned_at=returned_at)
    if decided is not None and decided(key):
        return None
    emission = _rung(own, unit_id, passed[-1], moved=was_moved, returned_at=returned_at)
    superseded = tuple(
        rung_key(own, unit_id, r, moved=was_moved, returned_at=returned_at) for r in passed[:-1]
    )
    return replace(emission, skipped=superseded)


def _summary(
    plan: Plan,
    period: Period,
    calendar: WorkingCalendar,
    now: dt.datetime,
    owing: list[tuple[str, dt.datetime, bool]],
    expected: int,
    memo: LadderMemo,
    decided: Callable[[str], bool] | None,
) -> Emission | None:
    """The office's summary of the period's latest rung day (its own ladder, not the units'
    extensions), listing who still owes; one per day under its key, none when nobody owes."""
    passed = passed_rungs(period, plan, calendar, now, memo=memo)
    if not passed or not owing or not meaningful(passed[-1], period, now):
        return None
    rung = passed[-1]
    day = rung.at.astimezone(plan.tz).date()
    key = f"summary|{period.id}|{day:%Y%m%d}"
    if decided is not None and decided(key):
        return None
    reaches = ["office", "leadership"] if rung.overdue else ["office"]
    event = _event(
        DeadlineSummary,
        key,
        period,
        rung.at,
        {
            "summary_at": rung.at,
            "rung": rung.rung_id,
            "reaches": reaches,
            "expected_count": expected,
            # ``PendingUnit``s as the event's validation builds them (once, not twice).
            "pending": [
                {"unit_id": u, "due_at": due, "overdue": now >= due, "returned": back}
                for u, due, back in owing
            ],
        },
    )
    return Emission(key, EmissionKind.SUMMARY, period.id, None, event)


def latest_reminder(period: Period, now: dt.datetime) -> int | None:
    """The smallest ``days_before`` whose moment has passed, while the due date has not.

    Earlier offsets whose moment also passed are stale (the service was down, or the period
    opened late): one reminder that says how close the deadline is beats three at once.
    Offsets that fall before the period opened are left to the opening announcement.
    """
    if now >= period.due_at:
        return None
    passed = [
        days
        for days in period.kind.reminder_days_before_due
        if period.opens_at <= reminder_at(period, days) <= now
    ]
    return min(passed, default=None)


def latest_rung(
    period: Period,
    plan: Plan,
    calendar: WorkingCalendar,
    now: dt.datetime,
    *,
    since: dt.datetime | None = None,
) -> RungAt | None:
    """The rung to send now, if any (the last of :func:`passed_rungs`)."""
    passed = passed_rungs(period, plan, calendar, now, since=since)
    return passed[-1] if passed and meaningful(passed[-1], period, now) else None


def meaningful(rung: RungAt, period: Period, now: dt.datetime) -> bool:
    """A reminder only before the due instant; an overdue notice until the lock."""
    return (rung.overdue or now < period.due_at) and now < period.closes_at


def passed_rungs(
    period: Period,
    plan: Plan,
    calendar: WorkingCalendar,
    now: dt.datetime,
    *,
    since: dt.datetime | None = None,
    memo: LadderMemo | None = None,
) -> list[RungAt]:
    """The rungs of the unit's ladder whose moment has passed, oldest first. Only the latest
    is sent, and only if it still means something (:func:`meaningful`); the others are
    recorded as skipped.

    Earlier rungs whose moment also passed are stale (the service was down): one reminder that
    says where the unit stands beats several at once. Rungs before the period opened are left
    to the opening announcement, and rungs of an extended ladder before the extension
    (``since``) are not sent late. ``memo`` keeps the ladders placed during one scan: units
    without an extension share their period's.
    """
    ladder = period.kind.reminders
    if ladder is None or now >= period.closes_at:
        return []
    memo = {} if memo is None else memo
    key = (period.id, period.due_at, period.closes_at)
    if key not in memo:
        memo[key] = rungs(period, ladder, calendar, plan.tz)
    # Most units share their period's ladder and no ``since``: filtered once per scan, not
    # once per unit (``now`` is the same for a whole scan, which is what a memo lives for).
    passed_key = (*key, since, now)
    if passed_key not in memo:
        start = max(period.opens_at, since or period.opens_at)
        memo[passed_key] = [r for r in memo[key] if start <= r.at <= now]
    return memo[passed_key]


def reminder_at(period: Period, days_before: int) -> dt.datetime:
    return period.due_at - dt.timedelta(days=days_before)


def _event(
    cls: type[E], key: str, period: Period, occurred_at: dt.datetime, payload: dict[str, object]
) -> E:
    return cls.model_validate(
        {
            "event_id": event_id_for(key),
            "occurred_at": occurred_at,
            "producer": PRODUCER,
            "correlation_id": period_correlation_id(period.id),
            "payload": {**_period_ref(period), **payload},
        }
    )


def _period_ref(period: Period) -> dict[str, object]:
    """The payload fields every event of a period starts with (``PeriodRef``)."""
    return {
        "plan_id": period.plan_id,
        "period_id": period.id,
        "report_kind": period.kind.code,
        "year": period.year,
        "due_at": period.due_at,
    }


def _opened(period: Period, unit_ids: Sequence[str]) -> Emission:
    key = f"opened|{period.id}"
    event = _event(
        PeriodOpened,
        key,
        period,
        period.opens_at,
        {
            "title": period.title,
            "opens_at": period.opens_at,
            "closes_at": period.closes_at,
            "data_from": period.data_from,
            "data_to": period.data_to,
            "expected_unit_ids": unit_ids,
        },
    )
    return Emission(key, EmissionKind.OPENED, period.id, None, event)


def _moved(period: Period, moved: bool) -> str:
    """A key suffix for a unit's extended due: its announcements are new ones, not repeats of
    what it got for the period's due (keys without it are the ones recorded so far)."""
    return f"|due={period.due_at:%Y%m%dT%H%M}" if moved else ""


def reminder_key(period: Period, unit_id: str, days_before: int, *, moved: bool = False) -> str:
    """The key of a calendar-day reminder (a kind without a ladder)."""
    return f"reminder|{period.id}|{unit_id}|{days_before}{_moved(period, moved)}"


def overdue_key(period: Period, unit_id: str, *, moved: bool = False) -> str:
    """The key of the one overdue notice of a kind without a ladder."""
    return f"overdue|{period.id}|{unit_id}{_moved(period, moved)}"


def _reminder(period: Period, unit_id: str, days_before: int, *, moved: bool = False) -> Emission:
    key = reminder_key(period, unit_id, days_before, moved=moved)
    moment = reminder_at(period, days_before)
    event = _event(
        DeadlineApproaching,
        key,
        period,
        moment,
        {
            "unit_id": unit_id,
            "days_before": days_before,
            "reminder_at": moment,
        },
    )
    return Emission(key, EmissionKind.REMINDER, period.id, unit_id, event)


def rung_key(
    period: Period,
    unit_id: str,
    rung: RungAt,
    *,
    moved: bool = False,
    returned_at: dt.datetime | None = None,
) -> str:
    # A returned report's rungs are new ones: the unit owes again since that return.
    back = f"|returned={returned_at:%Y%m%dT%H%M%S}" if returned_at else ""
    return f"rung|{period.id}|{unit_id}|{rung.rung_id}{_moved(period, moved)}{back}"


def _rung(
    period: Period,
    unit_id: str,
    rung: RungAt,
    *,
    moved: bool = False,
    returned_at: dt.datetime | None = None,
) -> Emission:
    key = rung_key(period, unit_id, rung, moved=moved, returned_at=returned_at)
    cls, kind, fields = _rung_fields(period, rung)
    event = _event(cls, key, period, rung.at, {"unit_id": unit_id, **fields})
    return Emission(key, kind, period.id, unit_id, event)


def _rung_fields(
    period: Period, rung: RungAt
) -> tuple[type[DeadlineApproaching] | type[DeadlineOverdue], EmissionKind, dict[str, object]]:
    """A rung's event class, kind and payload fields but for the unit and the period."""
    reaches = [a.value for a in rung.reaches]
    if rung.overdue:
        return (
            DeadlineOverdue,
            EmissionKind.OVERDUE,
            {"rung": rung.rung_id, "working_days_after": rung.working_days, "reaches": reaches},
        )
    # Whole days (rounded up) from the rung to the due instant, as the field always meant.
    days_before = max(1, -((rung.at - period.due_at) // dt.timedelta(days=1)))
    return (
        DeadlineApproaching,
        EmissionKind.REMINDER,
        {
            "days_before": days_before,
            "reminder_at": rung.at,
            "rung": rung.rung_id,
            "working_days_before": rung.working_days,
            "reaches": reaches,
        },
    )


class SharedRung:
    """A period's latest rung at one scan as every unit on the period's own terms gets it
    (no extension, return or exception): key, event and superseded keys are the same but for
    the unit, so all but the unit is worked out once, and each unit's emission costs its key,
    its id and one validation of its event. It equals :func:`_rung`'s, skipped keys included
    (tests/unit/test_deadlines_rung_day.py)."""

    def __init__(self, period: Period, passed: Sequence[RungAt]) -> None:
        latest = passed[-1]
        self._period_id = period.id
        self._head, self._tail = f"rung|{period.id}|", f"|{latest.rung_id}"
        self._superseded = tuple(f"|{r.rung_id}" for r in passed[:-1])
        self._cls, self._kind, fields = _rung_fields(period, latest)
        self._envelope = {
            "occurred_at": latest.at,
            "producer": PRODUCER,
            "correlation_id": period_correlation_id(period.id),
        }
        self._payload = {**_period_ref(period), **fields}

    def key(self, unit_id: str) -> str:
        """:func:`rung_key` of the unit's latest rung, on the period's own terms."""
        return self._head + unit_id + self._tail

    def emission(self, unit_id: str, key: str) -> Emission:
        event = self._cls.model_validate(
            {
                **self._envelope,
                "event_id": event_id_for.hex(key),
                "payload": {**self._payload, "unit_id": unit_id},
            }
        )
        skipped = tuple(map((self._head + unit_id).__add__, self._superseded))
        return Emission(key, self._kind, self._period_id, unit_id, event, skipped)


def _overdue(period: Period, unit_id: str, *, moved: bool = False) -> Emission:
    key = overdue_key(period, unit_id, moved=moved)
    event = _event(DeadlineOverdue, key, period, period.due_at, {"unit_id": unit_id})
    return Emission(key, EmissionKind.OVERDUE, period.id, unit_id, event)


def _closed(period: Period) -> Emission:
    key = f"closed|{period.id}"
    event = _event(PeriodClosed, key, period, period.closes_at, {"closed_at": period.closes_at})
    return Emission(key, EmissionKind.CLOSED, period.id, None, event)
