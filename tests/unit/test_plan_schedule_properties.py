"""Schedules by property: every period a valid report kind gives, over 20 years and in the
plan's time zone, is in order (data window, cut-off, due, lock; opening before due), has a
unique id that finds it again, and no kind that passes validation crashes period computation.
"""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from contracts.plan import Plan, ReportKind, ScheduleRule
from services.common.periods import Period, find_period, periods_of

pytestmark = pytest.mark.unit

BOUNDED = settings(
    max_examples=200,
    deadline=None,
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.too_slow],
)

# Fixed offsets (Vietnam's own, UTC, +14) and zones with daylight saving time, one of which
# (Havana) changes its clocks at midnight, so that some local midnights do not exist.
FIXED_OFFSET_ZONES = ["Asia/Ho_Chi_Minh", "UTC", "Pacific/Kiritimati"]
DST_ZONES = ["Europe/Berlin", "America/Sao_Paulo", "Australia/Lord_Howe", "America/Havana"]
YEARS = 20

VIETNAMESE = set("ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ")


# --- strategies -------------------------------------------------------------------------


def _month_day(day: dt.date) -> str:
    return f"{day:%m-%d}"


def _common_year_day(draw: st.DrawFn, year: int, first: int = 0, last: int = 364) -> dt.date:
    """A day of ``year`` (a common year), ``first``..``last`` days after 1 January."""
    return dt.date(year, 1, 1) + dt.timedelta(days=draw(st.integers(first, last)))


@st.composite
def yearly(draw: st.DrawFn) -> dict[str, Any]:
    """A yearly rule that passes validation by construction: window start ≤ window end <
    due day, each day written as MM-DD (never 29/02), with the flags that move the window
    start into the year before and the due day into the year after."""
    data_to = _common_year_day(draw, 2027)
    following = data_to == dt.date(2027, 12, 31) or draw(st.booleans())
    if following:
        due = _common_year_day(draw, 2029)  # stands for the following year: MM-DD only
    else:
        first = (data_to - dt.date(2027, 1, 1)).days + 1
        due = _common_year_day(draw, 2027, first=first)
    previous = draw(st.booleans())
    if previous:
        data_from = _common_year_day(draw, 2026)
    else:
        data_from = _common_year_day(draw, 2027, last=(data_to - dt.date(2027, 1, 1)).days)
    return {
        "rule": "yearly",
        "due_before": _month_day(due),
        "due_in_following_year": following,
        "data_from": _month_day(data_from),
        "data_from_previous_year": previous,
        "data_to": _month_day(data_to),
    }


@st.composite
def periodic(draw: st.DrawFn) -> dict[str, Any]:
    """A six-monthly, quarterly or monthly rule that passes validation by construction: due
    in the month after, or in the last month after its cut-off day."""
    rule = draw(st.sampled_from(["six_monthly", "quarterly", "monthly"]))
    numbers = {"six_monthly": 2, "quarterly": 4, "monthly": 12}[rule]
    due_month = draw(st.sampled_from(["last", "following"]))
    if due_month == "last":
        cutoff_day = draw(st.integers(1, 27))
        due_day = draw(st.integers(cutoff_day + 1, 28))
    else:
        cutoff_day = draw(st.integers(1, 28))
        due_day = draw(st.integers(1, 28))
    occurrences = draw(
        st.none()
        | st.lists(st.integers(1, numbers), min_size=1, max_size=numbers, unique=True).map(sorted)
    )
    return {
        "rule": rule,
        "due_day": due_day,
        "due_month": due_month,
        "cutoff_day": cutoff_day,
        "occurrences": occurrences,
    }


@st.composite
def once(draw: st.DrawFn) -> dict[str, Any]:
    """A one-off report due within the years checked, its window closed before it is due."""
    due_on = draw(st.dates(dt.date(2031, 1, 1), dt.date(2049, 12, 31)))
    data_to = due_on - dt.timedelta(days=draw(st.integers(1, 400)))
    data_from = data_to - dt.timedelta(days=draw(st.integers(0, 800)))
    return {
        "rule": "once",
        "due_on": due_on,
        "data_from_date": data_from,
        "data_to_date": data_to,
    }


def _common(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "title": "Báo cáo",
        "opens_days_before_due": draw(st.integers(0, 366)),
        "closes_days_after_due": draw(st.integers(0, 366)),
        "reminder_days_before_due": draw(
            st.lists(st.integers(1, 60), min_size=0, max_size=4, unique=True)
        ),
    }


@st.composite
def valid_kinds(draw: st.DrawFn) -> list[ReportKind]:
    """One to three valid kinds of any rule, with distinct codes."""
    rules = draw(st.lists(st.one_of(yearly(), periodic(), once()), min_size=1, max_size=3))
    return [
        ReportKind.model_validate({"code": f"ky-{n}", **_common(draw), **rule})
        for n, rule in enumerate(rules)
    ]


@st.composite
def any_kind(draw: st.DrawFn) -> dict[str, Any]:
    """A report kind as a clerk might write it: any rule, each field within its type's range,
    whether or not the fields make sense together. The fields the rule needs are mostly
    present, so that a fair share of the kinds pass validation."""
    rule = draw(st.sampled_from([r.value for r in ScheduleRule]))
    needs = {
        "yearly": {"due_before", "data_from", "data_to"},
        "once": {"due_on", "data_from_date", "data_to_date"},
    }.get(rule, {"due_day"})

    def field(name: str, values: st.SearchStrategy[Any]) -> Any:
        present = draw(st.integers(0, 9)) > 0 if name in needs else draw(st.booleans())
        return draw(values) if present else None

    month_day = st.builds("{:02d}-{:02d}".format, st.integers(1, 12), st.integers(1, 31))
    day = st.dates(dt.date(2029, 1, 1), dt.date(2052, 12, 31))
    return {
        "code": "ky-bat-ky",
        **_common(draw),
        "rule": rule,
        "due_before": field("due_before", month_day),
        "due_in_following_year": draw(st.booleans()),
        "data_from": field("data_from", month_day),
        "data_from_previous_year": draw(st.booleans()),
        "data_to": field("data_to", month_day),
        "due_day": field("due_day", st.integers(1, 31)),
        "due_month": draw(st.sampled_from(["last", "following"])),
        "occurrences": field("occurrences", st.lists(st.integers(0, 13), max_size=13)),
        "cutoff_day": draw(st.integers(1, 28)),
        "due_on": field("due_on", day),
        "data_from_date": field("data_from_date", day),
        "data_to_date": field("data_to_date", day),
    }


# --- the plan around the kinds ----------------------------------------------------------


def _plan(kinds: list[ReportKind], timezone: str) -> Plan:
    return Plan.model_validate(
        {
            "id": "kh-thuoc-tinh",
            "title": "Kế hoạch thử lịch báo cáo",
            "issuer": "Ủy ban nhân dân tỉnh Thử",
            "issuer_place": "Thử",
            "timezone": timezone,
            "consolidating_unit_id": "so-thu",
            "upward_recipient": "Bộ Nội vụ",
            "units": [{"id": "so-thu", "name": "Sở Thử", "kind": "department"}],
            "tasks": [
                {
                    "id": "nv-thu",
                    "section": "I.1",
                    "text": "Nhiệm vụ thử.",
                    "assignments": [{"unit_id": "so-thu"}],
                }
            ],
            "schedule": kinds,
        }
    )


def _local_midnight(day: dt.date, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """The instant local midnight of ``day`` is, in UTC: an aware local time in a repeated or
    skipped hour never compares equal to another zone's (PEP 495), so compare in UTC."""
    return dt.datetime.combine(day, dt.time(0), tz).astimezone(dt.UTC)


def _check_periods(plan: Plan, first_year: int, *, cutoff_at_midnight: bool = True) -> list[Period]:
    """Every property a period of ``plan`` must have, over YEARS years from ``first_year``."""
    tz = plan.tz
    periods = periods_of(plan, first_year, first_year + YEARS - 1)
    # find_period recomputes a kind's year: checked on the first, a middle and the last year
    # (every kind, every rule), which keeps a monthly schedule's check linear.
    sampled_years = {first_year, first_year + YEARS // 2, first_year + YEARS - 1}
    for p in periods:
        for instant in (p.opens_at, p.due_at, p.closes_at, p.cutoff_at):
            assert instant.tzinfo is not None
            assert instant.utcoffset() is not None
        assert p.data_from <= p.data_to
        window_opens = _local_midnight(p.data_from, tz)
        assert window_opens <= p.cutoff_at <= p.due_at <= p.closes_at, p.id
        assert p.opens_at <= p.due_at, p.id
        # Computed in the plan's zone: the start of the local day (as zoneinfo reads a
        # midnight that a clock change skips).
        assert p.due_at == _local_midnight(p.occurrence.due_day, tz)
        assert p.due_at.astimezone(tz).date() == p.occurrence.due_day
        assert p.opens_at == _local_midnight(
            p.occurrence.due_day - dt.timedelta(days=p.kind.opens_days_before_due), tz
        )
        assert p.closes_at == _local_midnight(
            p.occurrence.due_day + dt.timedelta(days=p.kind.closes_days_after_due), tz
        )
        if cutoff_at_midnight:
            assert p.cutoff_at == _local_midnight(p.data_to + dt.timedelta(days=1), tz)
        if p.year in sampled_years:
            assert find_period(plan, p.id) == p
    ids = [p.id for p in periods]
    assert len(ids) == len(set(ids))
    assert [p.due_at for p in periods] == sorted(p.due_at for p in periods)
    return periods


# --- properties -------------------------------------------------------------------------


@BOUNDED
@given(
    kinds=valid_kinds(),
    timezone=st.sampled_from(FIXED_OFFSET_ZONES),
    first_year=st.integers(2025, 2040),
)
def test_periods_are_in_order_in_the_plans_time_zone(
    kinds: list[ReportKind], timezone: str, first_year: int
) -> None:
    periods = _check_periods(_plan(kinds, timezone), first_year, cutoff_at_midnight=True)
    for kind in kinds:
        mine = [p for p in periods if p.kind.code == kind.code]
        if kind.rule is ScheduleRule.ONCE:
            assert len(mine) <= 1
            continue
        per_year = (
            len(kind.occurrences or [])
            or {
                ScheduleRule.YEARLY: 1,
                ScheduleRule.SIX_MONTHLY: 2,
                ScheduleRule.QUARTERLY: 4,
                ScheduleRule.MONTHLY: 12,
            }[kind.rule]
        )
        assert len(mine) == per_year * YEARS


@BOUNDED
@given(kinds=valid_kinds(), timezone=st.sampled_from(DST_ZONES), first_year=st.integers(2025, 2040))
def test_periods_are_in_order_where_clocks_change(
    kinds: list[ReportKind], timezone: str, first_year: int
) -> None:
    _check_periods(_plan(kinds, timezone), first_year)


@BOUNDED
@given(kind=periodic(), first_year=st.integers(2025, 2040))
def test_a_periodic_rule_s_data_windows_tile_the_years(
    kind: dict[str, Any], first_year: int
) -> None:
    """Decree 09: each window starts the day after the previous one's cut-off."""
    kind = {**kind, "occurrences": None, "code": "ky-0", "title": "Báo cáo"}
    periods = periods_of(
        _plan([ReportKind.model_validate(kind)], "Asia/Ho_Chi_Minh"),
        first_year,
        first_year + YEARS - 1,
    )
    for before, after in itertools.pairwise(periods):
        assert after.data_from == before.data_to + dt.timedelta(days=1)


@BOUNDED
@given(raw=any_kind(), timezone=st.sampled_from(FIXED_OFFSET_ZONES + DST_ZONES))
def test_no_kind_that_passes_validation_crashes_period_computation(
    raw: dict[str, Any], timezone: str
) -> None:
    try:
        kind = ReportKind.model_validate(raw)
    except ValidationError as error:
        # Refused: with our own Vietnamese explanation, never a stray library message.
        for e in error.errors():
            if e["type"] == "value_error":
                assert any(c in VIETNAMESE for c in str(e["msg"]).lower()), e
        return
    _check_periods(_plan([kind], timezone), 2030, cutoff_at_midnight=True)


@BOUNDED
@given(
    month_day=st.from_regex(r"\A[0-9]{2}-[0-9]{2}\Z"),
    field=st.sampled_from(["due_before", "data_from", "data_to"]),
    following=st.booleans(),
    previous=st.booleans(),
)
def test_any_month_day_is_refused_or_computes(
    month_day: str, field: str, following: bool, previous: bool
) -> None:
    raw: dict[str, Any] = {
        "code": "ky-0",
        "title": "Báo cáo năm",
        "due_before": "12-20",
        "due_in_following_year": following,
        "data_from": "01-01",
        "data_from_previous_year": previous,
        "data_to": "12-14",
        field: month_day,
    }
    month, day = int(month_day[:2]), int(month_day[3:])
    try:
        kind = ReportKind.model_validate(raw)
    except ValidationError:
        return
    # What passed is a day of every year.
    dt.date(2027, month, day)
    assert (month, day) != (2, 29)
    _check_periods(_plan([kind], "Asia/Ho_Chi_Minh"), 2026, cutoff_at_midnight=True)


def test_the_cut_off_is_a_local_midnight_where_clocks_change() -> None:
    kind = ReportKind.model_validate(
        {
            "code": "quy",
            "title": "Báo cáo quý",
            "rule": "quarterly",
            "due_day": 10,
            "due_month": "following",
        }
    )
    plan = _plan([kind], "Europe/Berlin")
    (q1,) = [p for p in periods_of(plan, 2027, 2027) if p.suffix == "q1"]
    # Cut-off 15/03 (CET), due 10/04 (CEST): the clocks changed on 28/03 in between.
    assert q1.cutoff_at == _local_midnight(dt.date(2027, 3, 15), plan.tz)
