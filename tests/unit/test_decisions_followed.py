"""deadlines, consolidate and notify follow the office's decisions from their events alone."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from contracts.events import (
    DeadlineApproaching,
    DeadlineOverdue,
    ExtensionDecided,
    FilingExceptionGranted,
    PeriodClosed,
    ReportReviewed,
    SubmissionReceived,
)
from services.common.clock import FixedClock
from services.common.periods import find_period
from services.common.reference import Catalog
from services.consolidate import handlers as consolidating
from services.consolidate.handlers import Consolidation, on_period_closed, on_report_reviewed
from services.consolidate.metrics import ConsolidateMetrics
from services.deadlines import handlers as deadlines_handlers
from services.deadlines.metrics import DeadlinesMetrics
from services.notify.domain import messages_for
from tests.support.decisions import FakeConsolidateTerms, FakeDeadlinesTerms
from tests.support.events import submission_received
from tests.support.fakes import FakeConsolidateStore, FakeDeadlinesStore, MemoryOutbox
from tests.support.plans import three_units_plan
from tests.support.report_files import MemoryFileStore

pytestmark = pytest.mark.unit

PLAN = three_units_plan("kh-xet")
_found = find_period(PLAN, "kh-xet.2027.6-thang")
assert _found is not None
PERIOD = _found
DUE, LOCK = PERIOD.due_at, PERIOD.closes_at
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
CATALOG = Catalog({PLAN.id: PLAN})
NEW_DUE = dt.datetime(2027, 6, 19, 17, tzinfo=dt.UTC)  # "before 20/6", local time


def unit_ref(unit_id: str, plan_id: str = PLAN.id, period_id: str = PERIOD.id) -> dict[str, Any]:
    return {"plan_id": plan_id, "period_id": period_id, "unit_id": unit_id}


def extension_decided(
    unit_id: str,
    at: dt.datetime,
    *,
    approved: bool = True,
    plan_id: str = PLAN.id,
    period_id: str = PERIOD.id,
) -> ExtensionDecided:
    return ExtensionDecided.model_validate(
        {
            "occurred_at": at,
            "producer": "submissions",
            "correlation_id": uuid.uuid4(),
            "payload": {
                **unit_ref(unit_id, plan_id, period_id),
                "request_id": str(uuid.uuid4()),
                "decision": "approved" if approved else "refused",
                "reason": "" if approved else "Không có lý do chính đáng.",
                "due_at": DUE,
                "new_due_at": NEW_DUE if approved else None,
                "new_closes_at": NEW_DUE + 15 * DAY if approved else None,
                "decided_by": "tonghop",
                "decided_at": at,
            },
        }
    )


def returned(
    unit_id: str,
    revision: int,
    at: dt.datetime,
    resubmit_by: dt.datetime,
    *,
    plan_id: str = PLAN.id,
    period_id: str = PERIOD.id,
) -> ReportReviewed:
    return ReportReviewed.model_validate(
        {
            "occurred_at": at,
            "producer": "submissions",
            "correlation_id": uuid.uuid4(),
            "payload": {
                **unit_ref(unit_id, plan_id, period_id),
                "review_id": f"{unit_id}|{revision}",
                "submission_id": uuid.uuid4().hex,
                "revision": revision,
                "decision": "returned",
                "comment": "Bổ sung số buổi tuyên truyền.\nGhi rõ địa bàn.",
                "reviewer": "tonghop",
                "reviewer_name": "Lê Văn Bình",
                "reviewed_at": at,
                "resubmit_by": resubmit_by,
            },
        }
    )


def revision(unit_id: str, number: int, at: dt.datetime) -> SubmissionReceived:
    first = submission_received(PERIOD, unit_id, at)
    payload = first.payload.model_copy(update={"revision": number})
    return first.model_copy(update={"payload": payload})


# --- deadlines ------------------------------------------------------------------------------


class Deadlines:
    def __init__(self, at: dt.datetime) -> None:
        self.clock = FixedClock(at)
        self.outbox = MemoryOutbox(self.clock)
        self.store = FakeDeadlinesStore(self.outbox)
        self.terms = FakeDeadlinesTerms()

    async def scan(self, at: dt.datetime) -> None:
        self.clock.at = at
        await deadlines_handlers.scan(
            catalog=CATALOG,
            store=self.store,
            clock=self.clock,
            wake=lambda: None,
            metrics=DeadlinesMetrics(CollectorRegistry()),
            catch_up=dt.timedelta(days=30),
            terms=self.terms,
        )

    def overdue(self) -> dict[str, dt.datetime]:
        return {
            e.payload.unit_id: e.payload.due_at
            for e in self.outbox.events()
            if isinstance(e, DeadlineOverdue)
        }


async def test_an_approved_extension_holds_back_the_units_overdue_notice_until_its_due() -> None:
    deadlines = Deadlines(DUE - DAY)
    await deadlines_handlers.on_extension_decided(
        extension_decided("xa-a", DUE - DAY), terms=deadlines.terms
    )
    await deadlines_handlers.on_extension_decided(
        extension_decided("xa-b", DUE - DAY, approved=False), terms=deadlines.terms
    )

    await deadlines.scan(DUE + HOUR)

    assert deadlines.overdue() == {"van-phong": DUE, "xa-b": DUE}
    reminders = [e for e in deadlines.outbox.events() if isinstance(e, DeadlineApproaching)]
    # xa-a is reminded of its own due instant instead.
    assert {e.payload.unit_id for e in reminders if e.payload.due_at == NEW_DUE} == {"xa-a"}

    await deadlines.scan(NEW_DUE + HOUR)

    assert deadlines.overdue() == {"van-phong": DUE, "xa-b": DUE, "xa-a": NEW_DUE}
    await deadlines.scan(NEW_DUE + 2 * HOUR)  # decided once
    assert len([e for e in deadlines.outbox.events() if isinstance(e, DeadlineOverdue)]) == 3


async def test_an_older_decision_redelivered_does_not_undo_a_later_one() -> None:
    terms = FakeDeadlinesTerms()
    later = extension_decided("xa-a", DUE)
    earlier = extension_decided("xa-a", DUE - DAY)
    earlier = earlier.model_copy(
        update={"payload": earlier.payload.model_copy(update={"new_due_at": DUE + DAY})}
    )
    await deadlines_handlers.on_extension_decided(later, terms=terms)
    await deadlines_handlers.on_extension_decided(earlier, terms=terms)
    kept = await terms.extension(PERIOD.id, "xa-a")
    assert kept is not None and kept["due_at"] == NEW_DUE


async def test_deadlines_keep_the_filing_exception_of_a_unit() -> None:
    terms = FakeDeadlinesTerms()
    event = FilingExceptionGranted.model_validate(
        {
            "occurred_at": LOCK + HOUR,
            "producer": "submissions",
            "correlation_id": uuid.uuid4(),
            "payload": {
                **unit_ref("xa-a"),
                "exception_id": "e-1",
                "reason": "Mất điện do bão.",
                "until": LOCK + 3 * DAY,
                "granted_by": "tonghop",
                "granted_at": LOCK + HOUR,
            },
        }
    )
    await deadlines_handlers.on_filing_exception_granted(event, terms=terms)
    kept = await terms.exception(PERIOD.id, "xa-a")
    assert kept is not None and (kept["until"], kept["reason"]) == (
        LOCK + 3 * DAY,
        "Mất điện do bão.",
    )


# --- consolidate ----------------------------------------------------------------------------


def consolidation(at: dt.datetime) -> Consolidation:
    clock = FixedClock(at)
    return Consolidation(
        CATALOG,
        FakeConsolidateStore(),
        MemoryOutbox(clock),
        clock,
        lambda: None,
        ConsolidateMetrics(CollectorRegistry()),
        MemoryFileStore(),
        terms=FakeConsolidateTerms(),
        documents=False,
    )


async def statuses(c: Consolidation) -> dict[str, str]:
    report = await consolidating.preview(PERIOD.id, c=c)
    return {u.unit_id: u.status for u in report.units}


async def test_consolidate_judges_a_unit_with_an_extension_by_its_own_due() -> None:
    c = consolidation(DUE + 2 * DAY)
    await consolidating.on_submission_received(revision("xa-a", 1, DUE + DAY), c=c)
    await consolidating.on_submission_received(revision("xa-b", 1, DUE + DAY), c=c)
    assert await statuses(c) == {"van-phong": "missing", "xa-a": "late", "xa-b": "late"}

    await consolidating.on_extension_decided(extension_decided("xa-a", DUE - DAY), c=c)
    await consolidating.on_extension_decided(
        extension_decided("xa-b", DUE - DAY, approved=False), c=c
    )

    assert await statuses(c) == {"van-phong": "missing", "xa-a": "on_time", "xa-b": "late"}


async def test_a_returned_report_resubmitted_late_makes_the_unit_late_only_after_the_grace() -> (
    None
):
    c = consolidation(DUE + 5 * DAY)
    for unit_id in ("xa-a", "xa-b"):
        await consolidating.on_submission_received(revision(unit_id, 1, DUE - DAY), c=c)
        await on_report_reviewed(returned(unit_id, 1, DUE - HOUR, DUE + 2 * DAY), c=c)
    await consolidating.on_submission_received(
        revision("xa-a", 2, DUE + DAY), c=c
    )  # within the grace
    await consolidating.on_submission_received(revision("xa-b", 2, DUE + 3 * DAY), c=c)  # after it
    assert await statuses(c) == {"van-phong": "missing", "xa-a": "on_time", "xa-b": "late"}


async def test_a_decision_learnt_after_the_close_amends_the_closing_report() -> None:
    c = consolidation(LOCK + HOUR)
    await consolidating.on_submission_received(revision("xa-a", 1, DUE + DAY), c=c)
    closed = PeriodClosed.model_validate(
        {
            "occurred_at": LOCK,
            "producer": "deadlines",
            "correlation_id": uuid.uuid4(),
            "payload": {
                "plan_id": PLAN.id,
                "period_id": PERIOD.id,
                "report_kind": PERIOD.kind.code,
                "year": PERIOD.year,
                "due_at": DUE,
                "closed_at": LOCK,
            },
        }
    )
    await on_period_closed(closed, c=c)
    decided = extension_decided("xa-a", LOCK)
    await consolidating.on_extension_decided(decided, c=c)
    await consolidating.on_extension_decided(decided, c=c)  # redelivered: amended once
    await consolidating.amend_closed_reports(c)

    reports = await c.store.reports(PERIOD.id)
    assert [(r.payload.version, r.payload.on_time, r.payload.late) for r in reports] == [
        (2, 1, 0),
        (1, 0, 1),
    ]
    assert reports[0].payload.supersedes == reports[1].payload.report_id


# --- notify ---------------------------------------------------------------------------------

SEED = Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
SEED_PLAN = Catalog.load([SEED]).plans["kh-nq35-ngoc-hoi"]
SEED_PERIOD = "kh-nq35-ngoc-hoi.2027.6-thang"
SEED_UNIT = "xa-sa-loong"
SEED_DUE = dt.datetime(2027, 6, 14, 17, tzinfo=dt.UTC)


def contacts() -> set[str]:
    unit = SEED_PLAN.unit(SEED_UNIT)
    assert unit is not None
    return {c.email for c in unit.contacts if c.email and "email" in c.receives}


def test_a_return_is_mailed_to_the_units_contacts_with_the_comment() -> None:
    event = returned(
        SEED_UNIT,
        2,
        SEED_DUE - DAY,
        SEED_DUE + 4 * DAY,
        plan_id=SEED_PLAN.id,
        period_id=SEED_PERIOD,
    )

    messages = messages_for(event, SEED_PLAN)

    assert {m.recipient for m in messages} == contacts()
    message = messages[0]
    assert message.template == "returned"
    assert message.notification_id.startswith(f"{event.event_id}|returned|email|")
    assert message.subject.startswith("Trả lại để chỉnh sửa: Báo cáo 6 tháng năm 2027 (bổ sung")
    assert "Bổ sung số buổi tuyên truyền. Ghi rõ địa bàn." in message.text  # on one line
    assert "trước 00:00 ngày 19/06/2027" in message.text
    accepted = event.payload.model_copy(update={"decision": "accepted", "resubmit_by": None})
    # issue 12: an accepted report is mailed too, with its own template
    [accepted_message] = messages_for(event.model_copy(update={"payload": accepted}), SEED_PLAN)
    assert accepted_message.template == "accepted"
    assert accepted_message.subject.startswith("Đã chấp nhận: Báo cáo 6 tháng năm 2027")


def test_an_extension_decision_is_mailed_either_way() -> None:
    approved = extension_decided(
        SEED_UNIT, SEED_DUE - 2 * DAY, plan_id=SEED_PLAN.id, period_id=SEED_PERIOD
    )
    refused = extension_decided(
        SEED_UNIT, SEED_DUE - 2 * DAY, approved=False, plan_id=SEED_PLAN.id, period_id=SEED_PERIOD
    )

    (yes, *_) = messages_for(approved, SEED_PLAN)
    (no, *_) = messages_for(refused, SEED_PLAN)

    assert yes.subject.startswith("Đồng ý gia hạn: Báo cáo 6 tháng năm 2027")
    assert "Hạn báo cáo mới: trước ngày 20/06/2027" in yes.text
    assert no.subject.startswith("Không đồng ý gia hạn")
    assert "Lý do: Không có lý do chính đáng." in no.text
    assert "trước ngày 15/06/2027" in no.text
    assert {m.recipient for m in messages_for(approved, SEED_PLAN)} == contacts()
