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
from itertools import repeat
from typing import Any, NamedTuple, TypeVar

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
from contracts.topics import TOPIC_OF, Topic
from services.common.outbox import SerializedEvent
from services.common.periods import Period
from services.common.templates import JsonTemplate
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


class Emission(NamedTuple):
    """An event that is due, under the key that makes it happen once, and serialised.

    A flat tuple, not a frozen dataclass holding the event: a rung day makes 100,000 of
    them, and a frozen dataclass's ``__init__`` costs three times a tuple's, each object
    more is more for the collector to walk."""

    key: str
    kind: EmissionKind
    period_id: str
    unit_id: str | None
    event_id: str
    topic: Topic
    occurred_at: dt.datetime
    """When it became due (UTC), the event's ``occurred_at``."""
    json: str
    """The event as ``model_dump_json`` writes it."""
    skipped: tuple[str, ...] = ()
    """Keys of earlier rungs this one supersedes (passed while no scan ran): recorded as
    skipped, never sent, if they were not decided before."""
    rung: str | None = None
    """The ladder rung a unit's announcement is (not set for the office's summary)."""

    @classmethod
    def of(
        cls,
        key: str,
        kind: EmissionKind,
        period_id: str,
        unit_id: str | None,
        event: Event,
        *,
        rung: str | None = None,
    ) -> Emission:
        return cls(
            key,
            kind,
            period_id,
            unit_id,
            str(event.event_id),
            TOPIC_OF[type(event)],
            event.occurred_at,
            event.model_dump_json(),
            rung=rung,
        )

    @property
    def serialized(self) -> SerializedEvent:
        """What the outbox stores (the record key is the unit or the period, as the topic
        says: ``Topic.key_field`` of the deadlines' topics is one of those two fields)."""
        record_key = getattr(self, self.topic.key_field)
        return SerializedEvent(self.event_id, self.topic, record_key, self.occurred_at, self.json)

    @property
    def event(self) -> Event:
        """The event as a model, parsed from its JSON (for readers; storing needs the JSON)."""
        return self.serialized.event()


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


Owing = list[tuple[dt.datetime, bool, list[str]]]
"""Who owes a report in a period, in the plan's order, for its summary: runs of units with
the same due instant and whether their report was returned (a run per unit with its own
terms, one for each stretch of the units on the period's terms)."""
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

    def text(self, name: str) -> str:
        """The same id as ``str(uuid)`` writes it (what an event's JSON carries), without
        building the ``uuid.UUID``."""
        (text,) = self.texts([name])
        return text

    def texts(self, names: Iterable[str]) -> list[str]:
        """``text`` of each name, in one pass over them (a rung day's 100,000)."""
        hexes = []
        for name in names:
            digest = self._head.copy()
            digest.update(name.encode())
            hexes.append(digest.hexdigest())
        v = _V5_VARIANT
        return [f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{v[h[16]]}{h[17:20]}-{h[20:32]}" for h in hexes]


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
    return emission.occurred_at, emission.key


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
    owing: Owing = []
    # Most units live the period as it is (no extension, return or exception): their latest
    # rung, its key but for the unit and its event but for the unit are the period's, worked
    # out once (a rung day is 100,000 of them).
    common = passed_rungs(period, plan, calendar, now, memo=memo)
    shared = SharedRung(period, common) if common and meaningful(common[-1], period, now) else None
    has_ladder = period.kind.reminders is not None
    own_terms = back.keys() | moved.keys() | exceptions.keys()
    run: list[str] | None = None  # units owing on the period's terms since the last that is not
    for unit_id in unit_ids:
        if has_ladder and unit_id not in own_terms:  # the period's terms: the hot path
            if unit_id not in reported:
                if run is None:
                    run = []
                    owing.append((period.due_at, False, run))
                run.append(unit_id)
            continue
        if run and shared is not None:  # their emissions first, in the plan's order
            yield from shared.emissions(run, decided)
        run = None
        returned_at = back.get(unit_id)
        if unit_id in reported and returned_at is None:
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
    if run and shared is not None:
        yield from shared.emissions(run, decided)
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
    owing: Owing,
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
    owing.append((own.due_at, returned_at is not None, [unit_id]))
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
    return emission._replace(skipped=superseded)


def _summary(
    plan: Plan,
    period: Period,
    calendar: WorkingCalendar,
    now: dt.datetime,
    owing: Owing,
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
    # Validated with nobody pending, then the list written in: each pending unit from a
    # template of its (due, overdue, returned), 100,000 of them on a province's rung day.
    model = _model(
        DeadlineSummary,
        key,
        period,
        rung.at,
        {
            "summary_at": rung.at,
            "rung": rung.rung_id,
            "reaches": reaches,
            "expected_count": expected,
            "pending": [],
        },
    )
    # Each run of units with the same (due, returned) from one template; a plan's unit ids
    # are slugs (``contracts.plan.model.Slug``), written in unchecked.
    templates: dict[tuple[dt.datetime, bool], JsonTemplate] = {}
    pending: list[str] = []
    for due, back, units in owing:
        template = templates.get((due, back))
        if template is None:
            template = templates[(due, back)] = JsonTemplate(
                PendingUnit,
                {"unit_id": "", "due_at": due, "overdue": now >= due, "returned": back},
                [("unit_id",)],
            )
        pending += template.fill_each(units)
    empty = model.model_dump_json()
    if empty.count(_NOBODY_PENDING) != 1:
        raise AssertionError("a summary's JSON must hold its pending list once")
    json = empty.replace(_NOBODY_PENDING, '"pending":[' + ",".join(pending) + "]")
    topic, event_id = TOPIC_OF[DeadlineSummary], str(model.event_id)
    return Emission(
        key, EmissionKind.SUMMARY, period.id, None, event_id, topic, model.occurred_at, json
    )


_NOBODY_PENDING = '"pending":[]'


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


def _model(
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
    event = _model(
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
    return Emission.of(key, EmissionKind.OPENED, period.id, None, event)


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
    event = _model(
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
    return Emission.of(key, EmissionKind.REMINDER, period.id, unit_id, event)


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


def rung_of_key(key: str) -> str:
    """The rung id a :func:`rung_key` names (``rung|<period>|<unit>|<rung id>[|...]``)."""
    return key.split("|")[3]


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
    event = _model(cls, key, period, rung.at, {"unit_id": unit_id, **fields})
    return Emission.of(key, kind, period.id, unit_id, event, rung=rung.rung_id)


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
    its id and its event's JSON from a template validated once (``JsonTemplate``). It equals
    :func:`_rung`'s, JSON and skipped keys included (tests/unit/test_deadlines_rung_day.py)."""

    def __init__(self, period: Period, passed: Sequence[RungAt]) -> None:
        latest = passed[-1]
        self._period_id = period.id
        self._head, self._tail = f"rung|{period.id}|", f"|{latest.rung_id}"
        self._superseded = tuple(f"|{r.rung_id}" for r in passed[:-1])
        self._rung = latest.rung_id
        cls, self._kind, fields = _rung_fields(period, latest)
        self._topic = TOPIC_OF[cls]
        template = {
            "event_id": "",
            "occurred_at": latest.at,
            "producer": PRODUCER,
            "correlation_id": period_correlation_id(period.id),
            "payload": {**_period_ref(period), **fields, "unit_id": ""},
        }
        self._json = JsonTemplate(cls, template, [("event_id",), ("payload", "unit_id")])
        self._occurred_at = latest.at.astimezone(dt.UTC)  # as the event's validation has it

    def key(self, unit_id: str) -> str:
        """:func:`rung_key` of the unit's latest rung, on the period's own terms."""
        return self._head + unit_id + self._tail

    def emissions(
        self, unit_ids: Sequence[str], decided: Callable[[str], bool] | None
    ) -> Iterator[Emission]:
        """The emission of each unit whose key ``decided`` does not know (all if None).

        Made a batch at a time, each step over the whole batch (comprehensions, ``map``),
        which halves the cost of one loop doing every step per unit: it runs for every unit
        of a rung day."""
        head, tail, superseded = self._head, self._tail, self._superseded
        fill = self._json.fill
        for start in range(0, len(unit_ids), _BATCH):
            units = unit_ids[start : start + _BATCH]
            keys = [head + unit_id + tail for unit_id in units]
            if decided is not None:  # the ones sent at an earlier scan are left out
                kept = [(k, u) for k, u in zip(keys, units, strict=True) if not decided(k)]
                keys, units = [k for k, _ in kept], [u for _, u in kept]
            ids = event_id_for.texts(keys)
            # Unchecked: UUID text, and a plan's unit id (a ``Slug``, see ``JsonTemplate.fill``).
            jsons = list(map(fill, ids, units))
            skipped = [tuple(map((head + u).__add__, superseded)) for u in units]
            yield from map(
                Emission._make,
                zip(
                    keys,
                    repeat(self._kind),
                    repeat(self._period_id),
                    units,
                    ids,
                    repeat(self._topic),
                    repeat(self._occurred_at),
                    jsons,
                    skipped,
                    repeat(self._rung),
                ),
            )


_BATCH = 1_000
"""Units a ``SharedRung`` makes emissions for at a time (what the scan stores at a time)."""


def _overdue(period: Period, unit_id: str, *, moved: bool = False) -> Emission:
    key = overdue_key(period, unit_id, moved=moved)
    event = _model(DeadlineOverdue, key, period, period.due_at, {"unit_id": unit_id})
    return Emission.of(key, EmissionKind.OVERDUE, period.id, unit_id, event)


def _closed(period: Period) -> Emission:
    key = f"closed|{period.id}"
    event = _model(PeriodClosed, key, period, period.closes_at, {"closed_at": period.closes_at})
    return Emission.of(key, EmissionKind.CLOSED, period.id, None, event)
