"""What the deadlines scheduler must announce at a given moment: pure decisions, no I/O.

The scheduler is level-triggered: every scan asks "given the plan, who has reported and the time
now, which announcements are due?" and gets the full list, each with a deterministic key. The
caller records the keys it has not recorded before, so a scan repeated after a crash or a restart
emits nothing twice, and a scan after downtime catches up without replaying stale reminders.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TypeVar

from contracts.envelope import Event
from contracts.events import (
    DeadlineApproaching,
    DeadlineOverdue,
    DeadlineSummary,
    PendingUnit,
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


@dataclass(frozen=True)
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


def period_correlation_id(period_id: str) -> uuid.UUID:
    """The correlation id every event of one period's lifecycle shares."""
    return uuid.uuid5(_IDS, f"period:{period_id}")


def event_id_for(key: str) -> uuid.UUID:
    # Name-based, so a decision computed twice (two scans, two replicas) is the same event and
    # consumers deduplicating by event_id see one even if it were ever recorded twice.
    return uuid.uuid5(_IDS, f"emission:{key}")


def is_relevant(period: Period, now: dt.datetime, catch_up: dt.timedelta) -> bool:
    """Started, and not closed longer ago than ``catch_up``."""
    return period.opens_at <= now and now - period.closes_at <= catch_up


def due_emissions(
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
) -> list[Emission]:
    """Every announcement due at ``now``, oldest first (the order they should be published).

    ``submitted`` maps a period id to the units that have reported for it; ``extended`` a
    period id to the units with an approved extension: their reminders count down to their own
    due instant, and their overdue notice waits for it. A kind with a ``reminders`` ladder
    counts in working days on ``calendar`` (the plan's, ``contracts.plan.workdays``), and a
    unit in ``returned`` (period id → unit → when its report was returned, not sent again
    since) re-enters that ladder from the return on; a unit in ``reopened`` (a filing
    exception) keeps getting its overdue rungs past the lock, until the exception ends.
    A rung whose key ``decided`` knows is left out before its event is built (the steady
    state of a scan: most units' latest rung was sent at an earlier scan).
    """
    calendar = calendar or WorkingCalendar()
    memo: LadderMemo = {}
    unit_ids = [u.id for u in plan.reporting_units()]
    found: list[Emission] = []
    for period in periods:
        if not is_relevant(period, now, catch_up):
            continue
        found.append(_opened(period, unit_ids))
        reported = submitted.get(period.id, frozenset())
        moved = (extended or {}).get(period.id, {})
        back = (returned or {}).get(period.id, {}) if period.kind.reminders else {}
        owing: list[tuple[str, dt.datetime, bool]] = []  # unit, own due, returned
        exceptions = (reopened or {}).get(period.id, {}) if period.kind.reminders else {}
        # Most units live the period as it is (no extension, return or exception): their
        # latest rung, and its key but for the unit, are the period's, worked out once.
        common = passed_rungs(period, plan, calendar, now, memo=memo)
        common_latest = common[-1] if common and meaningful(common[-1], period, now) else None
        key_head, key_tail = f"rung|{period.id}|", f"|{common_latest and common_latest.rung_id}"
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
                if common_latest is None:
                    continue
                if decided is not None and decided(key_head + unit_id + key_tail):
                    continue  # the steady state: sent at an earlier scan
            reopen = exceptions.get(unit_id)
            own = own_period(period, moved.get(unit_id), reopen)
            if period.kind.reminders is not None:
                if returned_at is not None or unit_id in moved or unit_id in exceptions:
                    owing.append((unit_id, own.due_at, returned_at is not None))
                extension = moved.get(unit_id)
                since = [t for t in (extension and extension.decided_at, returned_at) if t]
                if (
                    reopen is not None
                    and reopen.granted_at
                    and reopen.granted_at > period.closes_at
                ):
                    since.append(reopen.granted_at)  # the rungs while it was locked stay unsent
                passed = passed_rungs(
                    own, plan, calendar, now, since=max(since, default=None), memo=memo
                )
                if passed and meaningful(passed[-1], own, now):
                    was_moved = unit_id in moved
                    latest_key = rung_key(
                        own, unit_id, passed[-1], moved=was_moved, returned_at=returned_at
                    )
                    if decided is not None and decided(latest_key):
                        continue
                    superseded = tuple(
                        rung_key(own, unit_id, r, moved=was_moved, returned_at=returned_at)
                        for r in passed[:-1]
                    )
                    emission = _rung(
                        own, unit_id, passed[-1], moved=was_moved, returned_at=returned_at
                    )
                    found.append(replace(emission, skipped=superseded))
                continue
            reminder = latest_reminder(own, now)
            if reminder is not None:
                found.append(_reminder(own, unit_id, reminder, moved=unit_id in moved))
            elif own.due_at <= now < own.closes_at:
                found.append(_overdue(own, unit_id, moved=unit_id in moved))
        summary = _summary(plan, period, calendar, now, owing, len(unit_ids), memo, decided)
        if summary is not None:
            found.append(summary)
        if now >= period.closes_at:
            found.append(_closed(period))
    return sorted(found, key=lambda e: (e.event.occurred_at, e.key))


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
    pending = [
        PendingUnit(unit_id=u, due_at=due, overdue=now >= due, returned=back)
        for u, due, back in owing
    ]
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
            "pending": [u.model_dump() for u in pending],
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
            "payload": {
                "plan_id": period.plan_id,
                "period_id": period.id,
                "report_kind": period.kind.code,
                "year": period.year,
                "due_at": period.due_at,
                **payload,
            },
        }
    )


def _opened(period: Period, unit_ids: list[str]) -> Emission:
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
    reaches = [a.value for a in rung.reaches]
    if rung.overdue:
        event: Event = _event(
            DeadlineOverdue,
            key,
            period,
            rung.at,
            {
                "unit_id": unit_id,
                "rung": rung.rung_id,
                "working_days_after": rung.working_days,
                "reaches": reaches,
            },
        )
        return Emission(key, EmissionKind.OVERDUE, period.id, unit_id, event)
    # Whole days (rounded up) from the rung to the due instant, as the field always meant.
    days_before = max(1, -((rung.at - period.due_at) // dt.timedelta(days=1)))
    event = _event(
        DeadlineApproaching,
        key,
        period,
        rung.at,
        {
            "unit_id": unit_id,
            "days_before": days_before,
            "reminder_at": rung.at,
            "rung": rung.rung_id,
            "working_days_before": rung.working_days,
            "reaches": reaches,
        },
    )
    return Emission(key, EmissionKind.REMINDER, period.id, unit_id, event)


def _overdue(period: Period, unit_id: str, *, moved: bool = False) -> Emission:
    key = overdue_key(period, unit_id, moved=moved)
    event = _event(DeadlineOverdue, key, period, period.due_at, {"unit_id": unit_id})
    return Emission(key, EmissionKind.OVERDUE, period.id, unit_id, event)


def _closed(period: Period) -> Emission:
    key = f"closed|{period.id}"
    event = _event(PeriodClosed, key, period, period.closes_at, {"closed_at": period.closes_at})
    return Emission(key, EmissionKind.CLOSED, period.id, None, event)
