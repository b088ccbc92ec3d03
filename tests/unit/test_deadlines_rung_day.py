"""The rung day at scale (issue 11, the deadlines tick): decisions made lazily and taken in
chunks, each unit's event built from what its period shares, ids as ``uuid5`` makes them."""

from __future__ import annotations

import datetime as dt
import gc
import uuid
from collections.abc import Iterator

import pytest

from contracts.events import DeadlineApproaching, DeadlineOverdue
from contracts.plan.workdays import plan_calendar
from services.common.chunks import chunked
from services.common.periods import Period, find_period
from services.deadlines.domain import (
    Emission,
    EmissionKind,
    NameIds,
    Reopened,
    SharedRung,
    UnitDue,
    _rung,
    due_emissions,
    emissions_due,
    event_id_for,
    passed_rungs,
    period_correlation_id,
    publish_order,
    rung_key,
)
from tests.support.plans import make_plan, six_months, task, unit

pytestmark = pytest.mark.unit

NAMESPACE = uuid.UUID("6f1c8e0a-4b7d-5c1e-9a52-3d0b7e6f2a91")
"""``domain._IDS``, written out: every id the service ever published derives from it."""
VN = dt.timezone(dt.timedelta(hours=7))
UNITS = [f"xa-{n}" for n in range(1, 8)]
PLAN = make_plan(
    plan_id="kh-ngay-bac",
    consolidating_unit_id="van-phong",
    effective_from="2026-06-01",
    units=[
        unit("van-phong", "Văn phòng", "specialised_office", reports=False),
        *(unit(u, f"UBND xã {u}", "commune") for u in UNITS),
    ],
    tasks=[task("nv-1", "II.1", "Nhiệm vụ", UNITS, text="Làm")],
    schedule=[six_months(opens_days_before_due=30, closes_days_after_due=15, reminders={})],
)
CALENDAR = plan_calendar(PLAN)
ON_B0 = dt.datetime(2027, 6, 14, 9, tzinfo=VN)
"""The due day (Monday 14/6, due before 15/6): b0 sent at 08:00, the earlier rungs passed."""
AFTER_A1 = dt.datetime(2027, 6, 15, 9, tzinfo=VN)
"""The day after: a1, an overdue rung, with every reminder rung before it passed."""


def the_period() -> Period:
    period = find_period(PLAN, f"{PLAN.id}.2027.6-thang")
    assert period is not None
    return period


@pytest.mark.parametrize(
    "name", ["", "opened|kh.2027.6-thang", "rung|kh.2027.6-thang|xa-1|a1", "Ủy ban|ề", "x" * 300]
)
def test_ids_are_the_uuid5_of_their_names(name: str) -> None:
    expected = uuid.uuid5(NAMESPACE, f"emission:{name}")
    assert event_id_for(name) == expected
    assert event_id_for.text(name) == str(expected)
    assert NameIds(NAMESPACE, "period:")(name) == uuid.uuid5(NAMESPACE, f"period:{name}")
    assert period_correlation_id(name) == uuid.uuid5(NAMESPACE, f"period:{name}")


def test_an_id_published_before_is_made_again() -> None:
    # What the service published before its ids were made from a hash taken once per prefix.
    assert event_id_for("rung|kh.2027.6-thang|xa-1|a1") == uuid.UUID(
        "489d651b-91b0-51ed-b625-e7d1a72e1759"
    )


@pytest.mark.parametrize(
    ("at", "event_type"), [(ON_B0, DeadlineApproaching), (AFTER_A1, DeadlineOverdue)]
)
def test_a_shared_rung_is_what_each_units_own_ladder_gives(
    at: dt.datetime, event_type: type[DeadlineApproaching | DeadlineOverdue]
) -> None:
    period = the_period()
    passed = passed_rungs(period, PLAN, CALENDAR, at)
    assert len(passed) > 1  # rungs superseded, recorded as skipped
    shared = SharedRung(period, passed)
    for unit_id in UNITS:
        key = rung_key(period, unit_id, passed[-1])
        own = _rung(period, unit_id, passed[-1])._replace(
            skipped=tuple(rung_key(period, unit_id, r) for r in passed[:-1])
        )
        (emission,) = shared.emissions([unit_id], None)
        assert shared.key(unit_id) == key
        assert emission == own
        assert isinstance(emission.event, event_type)
        assert emission.event.model_dump_json() == own.event.model_dump_json()
        assert emission.event.event_id == uuid.uuid5(NAMESPACE, f"emission:{key}")


def decide(at: dt.datetime, **terms: object) -> tuple[list[Emission], list[Emission]]:
    """The lazy scan drained, and the sorted list, for the same inputs."""
    period = the_period()
    kwargs: dict[str, object] = {"catch_up": dt.timedelta(days=30), "calendar": CALENDAR, **terms}
    submitted = {period.id: {"xa-2"}}
    lazy = list(emissions_due(PLAN, [period], submitted, at, **kwargs))  # type: ignore[arg-type]
    listed = due_emissions(PLAN, [period], submitted, at, **kwargs)  # type: ignore[arg-type]
    return lazy, listed


def test_the_lazy_scan_yields_what_the_sorted_list_holds_period_first_summary_last() -> None:
    period = the_period()
    terms = {
        "extended": {
            period.id: {"xa-3": UnitDue(period.due_at + dt.timedelta(days=7), period.closes_at)}
        },
        "returned": {period.id: {"xa-2": dt.datetime(2027, 6, 10, 15, tzinfo=VN)}},
        "reopened": {period.id: {"xa-4": Reopened(until=period.closes_at + dt.timedelta(days=5))}},
    }
    lazy, listed = decide(AFTER_A1, **terms)

    assert sorted(lazy, key=publish_order) == listed
    assert listed == sorted(listed, key=publish_order)
    assert lazy[0].kind == EmissionKind.OPENED
    assert lazy[-1].kind == EmissionKind.SUMMARY
    # The units in the plan's order: xa-2 reported, but its report was returned.
    assert [e.unit_id for e in lazy[1:-1]] == UNITS
    assert "|returned=" in lazy[2].key
    assert "|due=" in lazy[3].key


@pytest.mark.parametrize("at", [ON_B0, AFTER_A1])
def test_each_emissions_json_is_what_its_model_writes(at: dt.datetime) -> None:
    # Rung events and the summary's pending list are rendered from templates, not dumped
    # per unit: parsed and written again by the model, each must come out the same.
    period = the_period()
    terms = {
        "extended": {
            period.id: {"xa-3": UnitDue(period.due_at + dt.timedelta(days=7), period.closes_at)}
        },
        "returned": {period.id: {"xa-2": dt.datetime(2027, 6, 10, 15, tzinfo=VN)}},
    }
    lazy, _ = decide(at, **terms)
    assert {e.kind for e in lazy} >= {EmissionKind.OPENED, EmissionKind.SUMMARY}
    for emission in lazy:
        event = emission.event
        assert event.model_dump_json() == emission.json, emission.key
        assert str(event.event_id) == emission.event_id
        assert event.event_id == uuid.uuid5(NAMESPACE, f"emission:{emission.key}")
        assert event.occurred_at == emission.occurred_at
        assert emission.serialized.key == getattr(event.payload, emission.topic.key_field)
    (summary,) = [e for e in lazy if e.kind is EmissionKind.SUMMARY]
    pending = summary.event.payload.pending  # type: ignore[attr-defined]
    # In the plan's order; xa-2 reported, but its report was returned; xa-3's due is its own.
    assert [p.unit_id for p in pending] == UNITS
    assert [p.unit_id for p in pending if p.returned] == ["xa-2"]
    assert {p.unit_id: p.due_at for p in pending}["xa-3"] == period.due_at + dt.timedelta(days=7)


def test_a_decided_rung_is_left_out_and_the_rest_still_comes() -> None:
    _, listed = decide(AFTER_A1)
    decided = {e.key for e in listed if e.unit_id in ("xa-1", "xa-7")}

    lazy, again = decide(AFTER_A1, decided=decided.__contains__)

    assert {e.key for e in lazy} == {e.key for e in listed} - decided
    assert sorted(lazy, key=publish_order) == again


def test_chunks_are_taken_from_the_producer_only_when_asked_for() -> None:
    made: list[int] = []

    def producer() -> Iterator[int]:
        for n in range(7):
            made.append(n)
            yield n

    chunks = chunked(producer(), 3)
    assert made == []
    assert next(chunks) == [0, 1, 2]
    assert made == [0, 1, 2]
    assert list(chunks) == [[3, 4, 5], [6]]
    assert list(chunked([], 3)) == []
    with pytest.raises(ValueError, match="at least 1"):
        list(chunked([1], 0))


def test_the_collector_is_paused_while_a_chunk_is_made_and_only_then() -> None:
    seen: list[bool] = []

    def producer() -> Iterator[int]:
        for n in range(5):
            seen.append(gc.isenabled())
            yield n

    assert gc.isenabled()
    for chunk in chunked(producer(), 2, collect=False):
        assert gc.isenabled(), chunk  # the caller's turn: it stores the chunk
    assert seen == [False] * 5
    gc.disable()
    try:
        list(chunked(producer(), 2, collect=False))
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()
