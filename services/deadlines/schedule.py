"""A period's reminder schedule per unit, for the operators: what was sent, what was skipped,
what is still to come. Pure: the plan, the period, what the store recorded and the time now.

The rows come from two sides that must agree: the ladder as the scan would place it today
(with the unit's extension, return and filing exception) and the decisions recorded under
their keys. A decision whose key the ladder no longer gives (a rung of the period's due,
before the unit's extension moved it) is still listed, as recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from enum import StrEnum

from contracts.plan import Plan
from contracts.plan.workdays import WorkingCalendar
from services.common.mongo import Document
from services.common.periods import Period
from services.deadlines.domain import (
    Reopened,
    UnitDue,
    overdue_key,
    own_period,
    reminder_key,
    rung_key,
)
from services.deadlines.ladder import rungs


class RungStatus(StrEnum):
    EMITTED = "emitted"
    """Decided and queued for publishing (the outbox sends it)."""
    SKIPPED = "skipped"
    """Superseded by a later rung while no scan ran; never sent."""
    PENDING = "pending"
    """Still to come: the unit owes a report and the rung's instant is ahead."""
    NOT_SENT = "not_sent"
    """Will not be sent: the unit has reported, or the rung fell before the period opened
    (or before the extension or return that placed it), or after the lock."""


@dataclass(frozen=True)
class ScheduledRung:
    key: str
    rung: str
    """'b14' … 'b0', 'a1', 'a1+7d' for a ladder; 'd7' or 'overdue' for calendar days."""
    status: RungStatus
    overdue: bool
    at: dt.datetime | None
    """UTC; None for a skipped rung no longer on the unit's ladder (its instant is unknown)."""
    reaches: tuple[str, ...] = ()
    recorded_at: dt.datetime | None = None


@dataclass(frozen=True)
class UnitSchedule:
    unit_id: str
    due_at: dt.datetime
    closes_at: dt.datetime
    owes: bool
    """Has not reported, or its report was returned and not sent again."""
    rungs: tuple[ScheduledRung, ...]


@dataclass(frozen=True)
class _Planned:
    key: str
    rung: str
    at: dt.datetime
    overdue: bool
    reaches: tuple[str, ...]


def _planned(
    own: Period,
    unit_id: str,
    calendar: WorkingCalendar,
    plan: Plan,
    *,
    moved: bool,
    returned_at: dt.datetime | None,
) -> list[_Planned]:
    ladder = own.kind.reminders
    if ladder is None:
        found = [
            _Planned(
                reminder_key(own, unit_id, days, moved=moved),
                f"d{days}",
                own.due_at - dt.timedelta(days=days),
                False,
                (),
            )
            for days in own.kind.reminder_days_before_due
        ]
        overdue = _Planned(overdue_key(own, unit_id, moved=moved), "overdue", own.due_at, True, ())
        return [*found, overdue]
    return [
        _Planned(
            rung_key(own, unit_id, r, moved=moved, returned_at=returned_at),
            r.rung_id,
            r.at,
            r.overdue,
            tuple(a.value for a in r.reaches),
        )
        for r in rungs(own, ladder, calendar, plan.tz)
    ]


def period_schedule(
    plan: Plan,
    period: Period,
    calendar: WorkingCalendar,
    now: dt.datetime,
    *,
    submitted: Set[str],
    decisions: Iterable[Document],
    extended: Mapping[str, UnitDue] | None = None,
    returned: Mapping[str, dt.datetime] | None = None,
    reopened: Mapping[str, Reopened] | None = None,
) -> list[UnitSchedule]:
    """Every reporting unit's rungs for ``period``, oldest first. ``decisions`` are the
    store's records of the period (``_id`` the key, ``kind``, ``unit_id``, ``due_since``,
    ``recorded_at``); the mappings are by unit id."""
    extended, returned, reopened = extended or {}, returned or {}, reopened or {}
    by_unit: dict[str, dict[str, Document]] = {}
    for doc in decisions:
        if doc.get("unit_id"):
            by_unit.setdefault(doc["unit_id"], {})[doc["_id"]] = doc
    found = []
    for unit in plan.reporting_units():
        returned_at = returned.get(unit.id)
        owes = unit.id not in submitted or returned_at is not None
        reopen = reopened.get(unit.id) if period.kind.reminders else None
        own = own_period(period, extended.get(unit.id), reopen)
        recorded = dict(by_unit.get(unit.id, {}))
        rows = []
        for p in _planned(
            own, unit.id, calendar, plan, moved=unit.id in extended, returned_at=returned_at
        ):
            decided = recorded.pop(p.key) if p.key in recorded else None
            if decided is not None:
                status = RungStatus.SKIPPED if decided["kind"] == "skipped" else RungStatus.EMITTED
            elif owes and now < p.at < own.closes_at:
                status = RungStatus.PENDING
            else:
                status = RungStatus.NOT_SENT
            rows.append(
                ScheduledRung(
                    p.key,
                    p.rung,
                    status,
                    p.overdue,
                    p.at,
                    p.reaches,
                    decided.get("recorded_at") if decided else None,
                )
            )
        for key, doc in recorded.items():  # decided under an earlier due or before a return
            rows.append(
                ScheduledRung(
                    key,
                    key.split("|")[3] if key.count("|") >= 3 else doc["kind"],
                    RungStatus.SKIPPED if doc["kind"] == "skipped" else RungStatus.EMITTED,
                    doc["kind"] == "overdue",
                    doc.get("due_since"),
                    (),
                    doc.get("recorded_at"),
                )
            )
        rows.sort(key=lambda r: (r.at is None, r.at or now, r.key))
        found.append(UnitSchedule(unit.id, own.due_at, own.closes_at, owes, tuple(rows)))
    return found
