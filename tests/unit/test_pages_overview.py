"""Where each expected unit stands in a period, and the rates office staff see."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.periods import find_period
from services.submissions.overview import UnitState, overview, review_decision, unit_state
from tests.support import plans

pytestmark = pytest.mark.unit

PLAN = plans.three_units_plan()
PERIOD = find_period(PLAN, "kh-tich-hop.2027.6-thang")
assert PERIOD is not None
BEFORE_DUE = PERIOD.due_at - dt.timedelta(days=1)
AFTER_DUE = PERIOD.due_at + dt.timedelta(days=1)


def head(
    revision: int = 1, *, on_time: bool = True, reviewed: int | None = None, decision: str = ""
) -> dict[str, object]:
    """A head document; ``reviewed``: the revision the office's decision was about."""
    found: dict[str, object] = {"revision": revision, "on_time": on_time}
    if reviewed is not None:
        found["review"] = {"revision": reviewed, "decision": decision}
    return found


@pytest.mark.parametrize(
    ("filed", "now", "exception", "expected"),
    [
        (head(), AFTER_DUE, None, UnitState.ON_TIME),
        (head(on_time=False), AFTER_DUE, None, UnitState.LATE),
        (head(2, reviewed=2, decision="returned"), AFTER_DUE, None, UnitState.RETURNED),
        # A return of an earlier version no longer applies to the new one.
        (head(3, reviewed=2, decision="returned"), AFTER_DUE, None, UnitState.ON_TIME),
        (None, BEFORE_DUE, None, UnitState.WAITING),
        (None, AFTER_DUE, None, UnitState.MISSING),
        (None, AFTER_DUE, AFTER_DUE + dt.timedelta(days=3), UnitState.EXCEPTION),
        (None, AFTER_DUE, AFTER_DUE - dt.timedelta(hours=1), UnitState.MISSING),
    ],
)
def test_a_units_state(
    filed: dict[str, object] | None,
    now: dt.datetime,
    exception: dt.datetime | None,
    expected: UnitState,
) -> None:
    assert PERIOD is not None
    assert unit_state(filed, PERIOD, now, exception) is expected


def test_an_extension_moves_when_a_unit_counts_as_missing() -> None:
    assert PERIOD is not None
    later = PERIOD.due_at + dt.timedelta(days=10)
    assert unit_state(None, PERIOD, AFTER_DUE, due_at=later) is UnitState.WAITING


def test_rates_count_every_expected_unit() -> None:
    assert PERIOD is not None
    summary = overview(
        PLAN,
        PERIOD,
        {"van-phong": head(), "xa-a": head(on_time=False)},
        AFTER_DUE,
    )

    assert [(r.unit.id, r.state) for r in summary.rows] == [
        ("van-phong", UnitState.ON_TIME),
        ("xa-a", UnitState.LATE),
        ("xa-b", UnitState.MISSING),
    ]
    assert (summary.expected, summary.filed, summary.on_time) == (3, 2, 1)
    assert summary.completeness == pytest.approx(2 / 3)
    assert summary.on_time_rate == pytest.approx(1 / 3)


def test_the_latest_version_waits_for_review_until_decided() -> None:
    assert review_decision(head(1)) == "submitted"
    assert review_decision(head(1, reviewed=1, decision="accepted")) == "accepted"
    assert review_decision(head(2, reviewed=1, decision="accepted")) == "submitted"
