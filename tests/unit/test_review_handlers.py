"""The office's decisions and intake together, against in-memory fakes: each decision is one
event through the outbox, and intake judges a late report by what was decided."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TypeVar

import pytest

from contracts.events import (
    ExtensionDecided,
    ExtensionRequested,
    FilingExceptionGranted,
    ReportReviewed,
    SubmissionReceived,
)
from services.common.auth import Principal, Role
from services.common.clock import FixedClock
from services.common.periods import find_period
from services.common.reference import Catalog
from services.submissions import review_handlers as office_
from services.submissions.domain import SubmissionRejected
from services.submissions.handlers import Intake, submit
from services.submissions.models import SubmissionCreate
from services.submissions.review import Conflicting, Invalid, Missing, ReviewState
from services.submissions.review_handlers import Office
from services.submissions.review_store import decided_request
from tests.support.decisions import FakeReviewStore
from tests.support.fakes import FakeSubmissionsStore, MemoryOutbox
from tests.support.plans import three_units_plan

pytestmark = pytest.mark.unit

E = TypeVar("E")

PLAN = three_units_plan("kh-xet")
_found = find_period(PLAN, "kh-xet.2027.6-thang")
assert _found is not None
PERIOD = _found
DUE, LOCK = PERIOD.due_at, PERIOD.closes_at
HOUR, DAY = dt.timedelta(hours=1), dt.timedelta(days=1)
STAFF = Principal(subject="tonghop", role=Role.OFFICE, name="Lê Văn Bình")
OFFICER = Principal(subject="canbo-a", role=Role.OFFICER, name="Nguyễn Thị Hà", unit_id="xa-a")


class Desk:
    """Intake and the office on the same fakes and clock."""

    def __init__(self, at: dt.datetime, grace_days: int = 5) -> None:
        self.clock = FixedClock(at)
        self.outbox = MemoryOutbox(self.clock)
        self.submissions = FakeSubmissionsStore()
        self.decisions = FakeReviewStore(self.submissions)
        catalog = Catalog({PLAN.id: PLAN})
        self.intake = Intake(
            catalog,
            self.submissions,
            self.outbox,
            self.clock,
            lambda: None,
            decisions=self.decisions,
        )
        self.office = Office(
            catalog,
            self.submissions,
            self.decisions,
            self.outbox,
            self.clock,
            lambda: None,
            resubmit_grace_days=grace_days,
        )

    def at(self, moment: dt.datetime) -> Desk:
        self.clock.at = moment
        return self

    async def file(self, results: str = "Đã làm.", unit_id: str = "xa-a") -> SubmissionReceived:
        body = SubmissionCreate.model_validate(
            {
                "period_id": PERIOD.id,
                "unit_id": unit_id,
                "tasks": [{"task_id": "nv-1", "status": "completed", "results": results}],
            }
        )
        await submit(body, None, self.intake)
        return self.events(SubmissionReceived)[-1]

    async def review(self, decision: ReviewState, revision: int, comment: str = "") -> None:
        await office_.review(
            self.office,
            PERIOD.id,
            "xa-a",
            revision=revision,
            decision=decision,
            comment=comment,
            by=STAFF,
        )

    def events(self, kind: type[E]) -> list[E]:
        return [e for e in self.outbox.events() if isinstance(e, kind)]


# --- review and resubmission ----------------------------------------------------------------


async def test_a_return_is_an_event_and_a_prompt_resubmission_stays_on_time() -> None:
    desk = Desk(DUE - DAY)
    first = await desk.file("Bản đầu")
    assert first.payload.on_time is True

    await desk.at(DUE - HOUR).review(ReviewState.RETURNED, 1, "Bổ sung số liệu.")

    (returned,) = desk.events(ReportReviewed)
    assert returned.payload.decision == "returned"
    assert returned.payload.comment == "Bổ sung số liệu."
    assert returned.payload.reviewer == "tonghop"
    assert returned.payload.resubmit_by == DUE - HOUR + 5 * DAY
    assert returned.correlation_id == uuid.UUID(first.payload.submission_id)
    assert returned.causation_id == first.event_id
    head = desk.submissions.heads[(PERIOD.id, "xa-a")]
    assert head["review"]["decision"] == "returned"

    second = await desk.at(DUE + 3 * DAY).file("Bản sửa")
    assert (second.payload.revision, second.payload.on_time) == (2, True)


async def test_a_resubmission_after_the_grace_days_is_late() -> None:
    desk = Desk(DUE - DAY, grace_days=2)
    await desk.file()
    await desk.at(DUE - HOUR).review(ReviewState.RETURNED, 1, "Sai số liệu.")
    late = await desk.at(DUE - HOUR + 2 * DAY).file("Bản sửa")
    assert late.payload.on_time is False


async def test_a_correction_of_an_accepted_report_is_judged_on_its_own() -> None:
    desk = Desk(DUE - DAY)
    await desk.file()
    await desk.review(ReviewState.ACCEPTED, 1)
    (accepted,) = desk.events(ReportReviewed)
    assert (accepted.payload.decision, accepted.payload.resubmit_by) == ("accepted", None)
    assert (await desk.at(DUE + HOUR).file("Đính chính")).payload.on_time is False


async def test_a_retried_review_is_answered_once_and_another_decision_is_refused() -> None:
    desk = Desk(DUE - DAY)
    await desk.file()
    await desk.review(ReviewState.RETURNED, 1, "Bổ sung.")
    await desk.review(ReviewState.RETURNED, 1, "Bổ sung.")
    assert len(desk.events(ReportReviewed)) == 1
    with pytest.raises(Conflicting) as refused:
        await desk.review(ReviewState.ACCEPTED, 1)
    assert refused.value.code == "already_reviewed"


async def test_only_the_latest_version_of_a_filed_report_is_reviewed() -> None:
    desk = Desk(DUE - DAY)
    with pytest.raises(Missing):
        await desk.review(ReviewState.ACCEPTED, 1)
    await desk.file()
    await desk.file("Đính chính")
    with pytest.raises(Conflicting) as stale:
        await desk.review(ReviewState.ACCEPTED, 1)
    assert stale.value.code == "stale_version"
    with pytest.raises(Invalid):
        await desk.review(ReviewState.RETURNED, 2, "")
    assert desk.events(ReportReviewed) == []


# --- lock and exception ---------------------------------------------------------------------


async def test_after_the_lock_only_an_exception_lets_the_unit_file() -> None:
    desk = Desk(LOCK + HOUR)
    with pytest.raises(SubmissionRejected) as refused:
        await desk.file()
    assert refused.value.code == "period_closed"

    await office_.grant_exception(
        desk.office,
        PERIOD.id,
        "xa-a",
        reason="Mất điện do bão.",
        last_day=dt.date(2027, 7, 2),
        by=STAFF,
    )

    (granted,) = desk.events(FilingExceptionGranted)
    assert granted.payload.until == dt.datetime(2027, 7, 2, 17, tzinfo=dt.UTC)
    assert granted.payload.reason == "Mất điện do bão."
    filed = await desk.file()
    assert (filed.payload.on_time, filed.payload.due_at) == (False, DUE)
    with pytest.raises(SubmissionRejected):  # the other units are still locked out
        await desk.file(unit_id="xa-b")
    with pytest.raises(SubmissionRejected):  # and the exception ends
        await desk.at(granted.payload.until).file()


async def test_an_exception_needs_a_reason_and_a_day_to_come() -> None:
    desk = Desk(LOCK + HOUR)
    for reason, day in (("", dt.date(2027, 7, 2)), ("Lý do", dt.date(2027, 6, 29))):
        with pytest.raises(Invalid):
            await office_.grant_exception(
                desk.office, PERIOD.id, "xa-a", reason=reason, last_day=day, by=STAFF
            )
    with pytest.raises(Missing):
        await office_.grant_exception(
            desk.office, PERIOD.id, "khong-co", reason="x", last_day=dt.date(2027, 7, 2), by=STAFF
        )


# --- extensions -----------------------------------------------------------------------------


async def request(desk: Desk, day: dt.date = dt.date(2027, 6, 20)) -> str:
    made = await office_.request_extension(
        desk.office, PERIOD.id, "xa-a", reason="Cán bộ nghỉ ốm.", due_before=day, by=OFFICER
    )
    return str(made["request_id"])


async def decide(desk: Desk, request_id: str, approve: bool, reason: str = "") -> bool:
    _, created = await office_.decide_extension(
        desk.office,
        PERIOD.id,
        "xa-a",
        request_id=request_id,
        approve=approve,
        due_before=None,
        reason=reason,
        by=STAFF,
    )
    return created


async def test_an_approved_extension_moves_the_units_due_instant() -> None:
    desk = Desk(DUE - 2 * DAY)
    request_id = await request(desk)
    (asked,) = desk.events(ExtensionRequested)
    assert (asked.payload.request_id, asked.payload.due_at) == (request_id, DUE)
    assert asked.payload.wanted_due_at == dt.datetime(2027, 6, 19, 17, tzinfo=dt.UTC)
    with pytest.raises(Conflicting):  # one pending request at a time
        await request(desk)

    assert await decide(desk, request_id, approve=True) is True
    assert await decide(desk, request_id, approve=True) is False  # a retry: the same answer
    with pytest.raises(Conflicting):
        await decide(desk, request_id, approve=False, reason="Không")

    (decided,) = desk.events(ExtensionDecided)
    new_due = dt.datetime(2027, 6, 19, 17, tzinfo=dt.UTC)
    assert (decided.payload.decision, decided.payload.new_due_at) == ("approved", new_due)
    assert decided.payload.new_closes_at == new_due + 15 * DAY
    assert decided.causation_id == asked.event_id
    filed = await desk.at(DUE + 2 * DAY).file()
    assert (filed.payload.on_time, filed.payload.due_at) == (True, new_due)
    assert (await desk.file(unit_id="xa-b")).payload.on_time is False


async def test_a_refusal_needs_a_reason_and_changes_no_due_instant() -> None:
    desk = Desk(DUE - 2 * DAY)
    request_id = await request(desk)
    with pytest.raises(Invalid):
        await decide(desk, request_id, approve=False)
    with pytest.raises(Missing):
        await decide(desk, "khong-co", approve=True)
    await decide(desk, request_id, approve=False, reason="Không có lý do chính đáng.")
    (refused,) = desk.events(ExtensionDecided)
    assert (refused.payload.decision, refused.payload.new_due_at) == ("refused", None)
    assert (await desk.at(DUE + HOUR).file()).payload.on_time is False
    await request(desk)  # decided: the unit may ask again


async def test_no_extension_is_asked_after_the_lock_nor_for_an_earlier_day() -> None:
    desk = Desk(DUE - DAY)
    with pytest.raises(Invalid):
        await request(desk, dt.date(2027, 6, 15))
    with pytest.raises(Conflicting) as locked:
        await request(desk.at(LOCK + HOUR))
    assert locked.value.code == "period_locked"


async def test_a_decision_whose_copy_was_not_written_is_applied_when_read() -> None:
    desk = Desk(DUE - 2 * DAY)
    request_id = await request(desk)
    await decide(desk, request_id, approve=True)
    # As after a crash between the two writes: the request still says "pending".
    place = (PERIOD.id, "xa-a")
    stored = desk.decisions.extensions_[place]
    stored["request"] = {**stored["request"], "state": "pending"}
    del stored["granted"]

    current = await desk.decisions.extension(PERIOD.id, "xa-a")

    assert current is not None
    assert current["request"]["state"] == "approved"
    decision = desk.decisions.decisions[(PERIOD.id, request_id)]
    assert current["request"] == decided_request(stored["request"], decision)
    assert current["granted"]["due_at"] == decision["new_due_at"]
