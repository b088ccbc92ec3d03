"""The office's decisions as pure rules: timeliness of a resubmission, lock, exception and
extension instants, when a review may be recorded, and the diff of two versions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from services.common.periods import find_period
from services.common.reference import Catalog
from services.submissions import domain
from services.submissions.models import SubmissionCreate
from services.submissions.review import (
    Conflicting,
    Invalid,
    Missing,
    Previous,
    ReviewState,
    UnitTerms,
    check_review,
    exception_end,
    extension_instants,
    on_time,
    previous_from,
    resubmit_by,
)
from services.submissions.review_handlers import resolve
from services.submissions.versions import diff
from tests.support.plans import three_units_plan

pytestmark = pytest.mark.unit

PLAN = three_units_plan("kh-xet")
_found = find_period(PLAN, "kh-xet.2027.6-thang")
assert _found is not None
PERIOD = _found
DUE, LOCK = PERIOD.due_at, PERIOD.closes_at
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)


# --- timeliness -----------------------------------------------------------------------------


def returned(on_time_: bool, until: dt.datetime) -> Previous:
    return Previous(revision=1, on_time=on_time_, state=ReviewState.RETURNED, resubmit_by=until)


def test_a_first_version_is_on_time_before_the_due_instant_only() -> None:
    assert on_time(DUE - HOUR, DUE, None) is True
    assert on_time(DUE, DUE, None) is False


def test_a_resubmission_within_the_grace_keeps_the_returned_versions_timeliness() -> None:
    until = DUE + 3 * DAY
    assert on_time(DUE + 2 * DAY, DUE, returned(True, until)) is True
    assert on_time(DUE - HOUR, DUE, returned(False, until)) is False  # late stays late


def test_a_resubmission_after_the_grace_or_a_plain_correction_is_judged_on_its_own() -> None:
    until = DUE + 3 * DAY
    assert on_time(until, DUE, returned(True, until)) is False
    accepted = Previous(revision=1, on_time=True, state=ReviewState.ACCEPTED)
    assert on_time(DUE + HOUR, DUE, accepted) is False
    submitted = Previous(revision=1, on_time=True, state=ReviewState.SUBMITTED)
    assert on_time(DUE + HOUR, DUE, submitted) is False


def test_resubmit_by_counts_days_from_the_return() -> None:
    at = dt.datetime(2027, 6, 10, 3, 20, tzinfo=dt.UTC)
    assert resubmit_by(at, 5) == dt.datetime(2027, 6, 15, 3, 20, tzinfo=dt.UTC)


def test_the_head_hint_counts_only_for_the_revision_it_names() -> None:
    hint = {"revision": 1, "decision": "returned", "resubmit_by": DUE}
    head: dict[str, Any] = {"revision": 1, "on_time": True, "review": hint}
    assert previous_from(head) == Previous(1, True, ReviewState.RETURNED, DUE)
    # A newer version arrived since: the hint is about the old one.
    assert previous_from({**head, "revision": 2}) == Previous(2, True, ReviewState.SUBMITTED)
    assert previous_from({"revision": 1, "on_time": False}) == Previous(
        1, False, ReviewState.SUBMITTED
    )
    assert previous_from(None) is None


# --- lock, exception, extension -------------------------------------------------------------


def test_without_terms_the_period_locks_for_everyone_at_its_lock_instant() -> None:
    terms = UnitTerms()
    assert (terms.due(PERIOD), terms.lock(PERIOD)) == (DUE, LOCK)
    assert terms.may_file(PERIOD, LOCK - HOUR)
    assert not terms.may_file(PERIOD, LOCK)


def test_an_exception_lets_the_unit_file_after_the_lock_until_its_end() -> None:
    until = exception_end(PLAN, dt.date(2027, 7, 2))
    assert until == dt.datetime(2027, 7, 2, 17, tzinfo=dt.UTC)  # midnight after 2/7, local
    terms = UnitTerms(exception_until=until)
    assert terms.may_file(PERIOD, until - HOUR)
    assert not terms.may_file(PERIOD, until)
    assert terms.lock(PERIOD) == LOCK  # an exception does not move the lock itself


def test_an_extension_moves_the_due_and_the_lock_by_the_plans_grace_days() -> None:
    due, lock = extension_instants(PLAN, PERIOD, dt.date(2027, 6, 25))
    # "Before 25/6" is the start of 25 June, local time; the lock 15 days later (the plan's
    # closes_days_after_due), as the period's own lock is counted.
    assert due == dt.datetime(2027, 6, 24, 17, tzinfo=dt.UTC)
    assert lock == dt.datetime(2027, 7, 9, 17, tzinfo=dt.UTC)
    terms = UnitTerms(due_at=due, closes_at=lock)
    assert (terms.due(PERIOD), terms.lock(PERIOD)) == (due, lock)
    assert terms.may_file(PERIOD, LOCK + DAY)


def test_an_extension_never_locks_before_the_period_nor_is_due_earlier() -> None:
    short = PLAN.schedule[0].model_copy(update={"closes_days_after_due": 0})
    period = dataclasses.replace(PERIOD, kind=short)
    _, lock = extension_instants(PLAN, period, dt.date(2027, 6, 16))
    assert lock == period.closes_at
    with pytest.raises(Invalid) as refused:
        extension_instants(PLAN, PERIOD, dt.date(2027, 6, 15))
    assert refused.value.code == "extension_not_later"


def test_a_period_id_naming_no_computable_year_is_unknown_not_an_error() -> None:
    catalog = Catalog({PLAN.id: PLAN})
    for year in ("0", "99999", "²³", "1"):
        with pytest.raises(Missing):
            resolve(catalog, f"kh-xet.{year}.6-thang", "xa-a")


def body(unit_id: str = "xa-a") -> SubmissionCreate:
    return SubmissionCreate.model_validate(
        {
            "period_id": PERIOD.id,
            "unit_id": unit_id,
            "tasks": [{"task_id": "nv-1", "status": "completed", "results": "Đã làm."}],
        }
    )


def test_intake_refuses_after_the_lock_unless_the_unit_has_an_exception() -> None:
    catalog = Catalog({PLAN.id: PLAN})
    with pytest.raises(domain.SubmissionRejected) as refused:
        domain.check(body(), catalog, LOCK + HOUR)
    assert (refused.value.status, refused.value.code) == (409, "period_closed")
    assert "ngoại lệ" in refused.value.message
    excepted = UnitTerms(exception_until=LOCK + DAY)
    assert domain.check(body(), catalog, LOCK + HOUR, excepted)[1] == PERIOD
    extended = UnitTerms(due_at=DUE + DAY, closes_at=LOCK + 2 * HOUR)
    assert domain.check(body(), catalog, LOCK + HOUR, extended)[1] == PERIOD


# --- review ---------------------------------------------------------------------------------


def test_a_review_needs_the_latest_version_and_a_return_a_comment() -> None:
    head = {"revision": 2}
    check_review(head, 2, ReviewState.ACCEPTED, "")
    check_review(head, 2, ReviewState.RETURNED, "Bổ sung số liệu.")
    cases: list[tuple[Any, int, ReviewState, str, type[Exception], str]] = [
        (head, 2, ReviewState.RETURNED, "  ", Invalid, "comment_required"),
        (head, 1, ReviewState.ACCEPTED, "", Conflicting, "stale_version"),
        (None, 1, ReviewState.ACCEPTED, "", Missing, "no_report"),
        (head, 2, ReviewState.SUBMITTED, "", Invalid, "invalid_decision"),
    ]
    for head_, revision, decision, comment, error, code in cases:
        with pytest.raises(error) as refused:
            check_review(head_, revision, decision, comment)
        assert refused.value.code == code  # type: ignore[attr-defined]


# --- versions -------------------------------------------------------------------------------


def version(revision: int, tasks: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "period_id": PERIOD.id,
        "unit_id": "xa-a",
        "revision": revision,
        "tasks": tasks,
        **fields,
    }


def task(task_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "status": "in_progress",
        "results": "Dòng 1\nDòng 2",
        "indicators": [],
        "difficulties": "",
        "proposals": "",
        **fields,
    }


def test_the_diff_names_each_changed_field_of_each_task() -> None:
    older = version(
        1,
        [
            task(
                "nv-1",
                indicators=[
                    {"code": "so-buoi", "value": 2},
                    {"code": "co-ke-hoach", "value": 0, "flag": False},
                    {"code": "bo", "value": 1},
                ],
            ),
            task("nv-2"),
        ],
        attachments=[{"attachment_id": "a1", "filename": "cu.pdf", "sha256": "0" * 64}],
    )
    newer = version(
        2,
        [
            task(
                "nv-1",
                status="completed",
                results="Dòng 1\nDòng 2 đã sửa\nDòng 3",
                indicators=[
                    {"code": "so-buoi", "value": 5},
                    {"code": "co-ke-hoach", "value": 1, "flag": True},
                    {"code": "ghi-chu", "value": 0, "text": "Mới"},
                ],
            ),
            task("nv-3"),
        ],
        attachments=[{"attachment_id": "a2", "filename": "moi.pdf", "sha256": "1" * 64}],
    )

    found = diff(older, newer)

    assert (found.from_revision, found.to_revision, found.changed) == (1, 2, True)
    assert [(t.task_id, t.change) for t in found.tasks] == [
        ("nv-1", "changed"),
        ("nv-3", "added"),
        ("nv-2", "removed"),
    ]
    nv1 = found.tasks[0]
    assert {f.field: (f.before, f.after) for f in nv1.fields if f.field == "status"} == {
        "status": ("in_progress", "completed")
    }
    results = next(f for f in nv1.fields if f.field == "results")
    assert [(line.op, line.text) for line in results.lines] == [
        ("equal", "Dòng 1"),
        ("delete", "Dòng 2"),
        ("insert", "Dòng 2 đã sửa"),
        ("insert", "Dòng 3"),
    ]
    assert [(i.code, i.change, i.before, i.after) for i in nv1.indicators] == [
        ("so-buoi", "changed", {"value": 2}, {"value": 5}),
        ("co-ke-hoach", "changed", {"flag": False}, {"flag": True}),
        ("ghi-chu", "added", None, {"text": "Mới"}),
        ("bo", "removed", {"value": 1}, None),
    ]
    assert [(a.attachment_id, a.change) for a in found.attachments] == [
        ("a1", "removed"),
        ("a2", "added"),
    ]


def test_two_equal_versions_differ_in_nothing() -> None:
    same = [task("nv-1", indicators=[{"code": "so-buoi", "value": 2}])]
    found = diff(version(1, same), version(3, same))
    assert found.changed is False
    assert [(t.task_id, t.change, t.fields, t.indicators) for t in found.tasks] == [
        ("nv-1", "unchanged", [], [])
    ]
