"""The office's decisions on a unit's report, each stored with its event (see ``outbox.py``).

Every decision goes the way intake stores a report: the event's intent first, then the
document that carries its ``event_id``, then the commit that lets the relay publish it. A
decision repeated as it was made (a retried request) answers what is stored, and repairs what
a crash may have left half-written; a different decision of the same thing is refused.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from contracts.envelope import Event
from contracts.events import (
    ExtensionDecided,
    ExtensionDecidedPayload,
    ExtensionRequested,
    ExtensionRequestedPayload,
    FilingExceptionGranted,
    FilingExceptionGrantedPayload,
    ReportReviewed,
    ReportReviewedPayload,
)
from contracts.plan import Plan
from services.common.auth import Principal
from services.common.clock import Clock
from services.common.mongo import Document, to_millis
from services.common.outbox import Outbox, Ref
from services.common.periods import Period, PeriodState
from services.common.reference import Catalog
from services.submissions.review import (
    Conflicting,
    Invalid,
    Missing,
    ReviewState,
    UnitTerms,
    check_review,
    exception_end,
    extension_instants,
    local_midnight,
    resubmit_by,
    terms_from,
)
from services.submissions.review_store import (
    PENDING,
    AlreadyRecorded,
    MongoReviewStore,
    ReviewStore,
    head_hint,
    review_id,
)
from services.submissions.store import SubmissionsStore

PRODUCER = "submissions"


@dataclass(frozen=True)
class Office:
    """What the office's decisions need; the API routes share one."""

    catalog: Catalog
    submissions: SubmissionsStore
    store: ReviewStore
    outbox: Outbox
    clock: Clock
    wake_relay: Callable[[], None]
    resubmit_grace_days: int = 5


def resolve(catalog: Catalog, period_id: str, unit_id: str) -> tuple[Plan, Period]:
    """The plan and period of a reporting unit, or :class:`Missing`."""
    found = catalog.period(period_id)
    if found is None:
        raise Missing("unknown_period", f"Không tìm thấy kỳ báo cáo “{period_id}”.")
    plan, period = found
    if not any(u.id == unit_id for u in plan.reporting_units()):
        raise Missing("unknown_unit", f"Đơn vị “{unit_id}” không báo cáo theo kế hoạch này.")
    return plan, period


async def unit_terms(
    store: ReviewStore | None, period: Period, unit_id: str, now: dt.datetime
) -> UnitTerms:
    """What office staff granted the unit; read only once the period is due (before, neither
    an extension nor an exception changes anything), so filing on time reads nothing more."""
    if store is None or now < period.due_at:
        return UnitTerms()
    return await terms_of(store, period.id, unit_id)


async def terms_of(store: ReviewStore, period_id: str, unit_id: str) -> UnitTerms:
    return terms_from(
        await store.extension(period_id, unit_id), await store.exception(period_id, unit_id)
    )


async def _announce(office: Office, event: Event, ref: Ref) -> Document:
    return await office.outbox.intend(event, ref)


async def _published(office: Office, entry: Document) -> None:
    await office.outbox.commit(entry)
    office.wake_relay()


# --- review ---------------------------------------------------------------------------------


async def review(
    office: Office,
    period_id: str,
    unit_id: str,
    *,
    revision: int,
    decision: ReviewState,
    comment: str,
    by: Principal,
) -> tuple[Document, bool]:
    """Accept or return the unit's latest version; (the review, whether this call made it)."""
    plan, period = resolve(office.catalog, period_id, unit_id)
    head = await office.submissions.head(period.id, unit_id)
    check_review(head, revision, decision, comment)
    assert head is not None
    rid = review_id(unit_id, revision)
    existing = await office.store.review(period.id, rid)
    if existing is not None:
        return await _reviewed_before(office, existing, decision, comment), False
    now = to_millis(office.clock.now())
    returned = decision is ReviewState.RETURNED
    payload = ReportReviewedPayload(
        plan_id=plan.id,
        period_id=period.id,
        unit_id=unit_id,
        review_id=rid,
        submission_id=head["submission_id"],
        revision=revision,
        decision="returned" if returned else "accepted",
        comment=comment.strip(),
        reviewer=by.subject,
        reviewer_name=by.name,
        reviewed_at=now,
        resubmit_by=resubmit_by(now, office.resubmit_grace_days) if returned else None,
    )
    event = ReportReviewed(
        occurred_at=now,
        producer=PRODUCER,
        correlation_id=_uuid(head["submission_id"]) or uuid.uuid4(),
        causation_id=_uuid(head.get("event_id")),
        payload=payload,
    )
    entry = await _announce(office, event, Ref(MongoReviewStore.reviews_name(period.id), rid))
    document = {
        "_id": rid,
        **payload.model_dump(mode="python", exclude={"review_id"}),
        "event_id": entry["_id"],
    }
    try:
        await office.store.add_review(document)
    except AlreadyRecorded:
        await office.outbox.abandon(entry)
        stored = await office.store.review(period.id, rid)
        if stored is None:  # only if someone deletes reviews by hand
            raise
        return await _reviewed_before(office, stored, decision, comment), False
    await office.store.mark_head(period.id, unit_id, head_hint(document))
    await _published(office, entry)
    return document, True


async def _reviewed_before(
    office: Office, stored: Document, decision: ReviewState, comment: str
) -> Document:
    if stored["decision"] != decision.value or stored.get("comment", "") != comment.strip():
        raise Conflicting(
            "already_reviewed",
            f"Phiên bản {stored['revision']} đã được "
            f"{'trả lại' if stored['decision'] == 'returned' else 'chấp nhận'} trước đó.",
        )
    # The same review again (a retry): its hint may be what a crash left out.
    head = await office.submissions.head(stored["period_id"], stored["unit_id"])
    if head is not None and head["revision"] == stored["revision"]:
        await office.store.mark_head(stored["period_id"], stored["unit_id"], head_hint(stored))
    return stored


# --- filing exception -----------------------------------------------------------------------


async def grant_exception(
    office: Office,
    period_id: str,
    unit_id: str,
    *,
    reason: str,
    last_day: dt.date,
    by: Principal,
) -> Document:
    """Let the unit file for the period until the end of ``last_day`` (local time)."""
    plan, period = resolve(office.catalog, period_id, unit_id)
    if not reason.strip():
        raise Invalid("reason_required", "Cần ghi rõ lý do cho phép nộp ngoại lệ.")
    now = to_millis(office.clock.now())
    until = exception_end(plan, last_day)
    if until <= now:
        raise Invalid("exception_in_past", "Ngày hết hạn ngoại lệ phải từ hôm nay trở đi.")
    exception_id = uuid.uuid4()
    payload = FilingExceptionGrantedPayload(
        plan_id=plan.id,
        period_id=period.id,
        unit_id=unit_id,
        exception_id=str(exception_id),
        reason=reason.strip(),
        until=until,
        granted_by=by.subject,
        granted_by_name=by.name,
        granted_at=now,
    )
    event = FilingExceptionGranted(
        occurred_at=now, producer=PRODUCER, correlation_id=exception_id, payload=payload
    )
    ref = Ref(MongoReviewStore.exceptions_name(period.id), unit_id)
    entry = await _announce(office, event, ref)
    document = {"_id": unit_id, **payload.model_dump(mode="python"), "event_id": entry["_id"]}
    await office.store.put_exception(document)
    await _published(office, entry)
    return document


# --- extensions -----------------------------------------------------------------------------


async def request_extension(
    office: Office,
    period_id: str,
    unit_id: str,
    *,
    reason: str,
    due_before: dt.date,
    by: Principal,
) -> Document:
    """The unit asks for a due instant "before ``due_before``" instead of its current one."""
    plan, period = resolve(office.catalog, period_id, unit_id)
    if not reason.strip():
        raise Invalid("reason_required", "Cần ghi rõ lý do đề nghị gia hạn.")
    now = to_millis(office.clock.now())
    current = await office.store.extension(period.id, unit_id)
    if ((current or {}).get("request") or {}).get("state") == PENDING:
        raise Conflicting(
            "request_pending",
            "Đơn vị đã có một đề nghị gia hạn đang chờ xem xét cho kỳ báo cáo này.",
        )
    terms = await terms_of(office.store, period.id, unit_id)
    if period.state(now) is PeriodState.CLOSED and not terms.may_file(period, now):
        raise Conflicting(
            "period_locked",
            f"{period.title} đã khóa nhận báo cáo; không thể gia hạn, đề nghị Cơ quan tổng "
            "hợp cho phép nộp ngoại lệ.",
        )
    wanted = local_midnight(due_before, plan)
    if wanted <= terms.due(period):
        raise Invalid(
            "extension_not_later",
            f"Hạn đề nghị phải sau hạn hiện tại (trước ngày "
            f"{terms.due(period).astimezone(plan.tz):%d/%m/%Y}).",
        )
    request_id = uuid.uuid4()
    payload = ExtensionRequestedPayload(
        plan_id=plan.id,
        period_id=period.id,
        unit_id=unit_id,
        request_id=str(request_id),
        reason=reason.strip(),
        due_at=terms.due(period),
        wanted_due_at=wanted,
        requested_by=by.subject,
        requested_by_name=by.name,
        requested_at=now,
    )
    event = ExtensionRequested(
        occurred_at=now, producer=PRODUCER, correlation_id=request_id, payload=payload
    )
    entry = await _announce(
        office, event, Ref(MongoReviewStore.extensions_name(period.id), unit_id)
    )
    request = {**payload.model_dump(mode="python"), "state": PENDING}
    await office.store.put_request(request, entry["_id"])
    await _published(office, entry)
    return request


async def decide_extension(
    office: Office,
    period_id: str,
    unit_id: str,
    *,
    request_id: str,
    approve: bool,
    due_before: dt.date | None,
    reason: str,
    by: Principal,
) -> tuple[Document, bool]:
    """Approve the unit's pending request (with the due date asked, or ``due_before``) or
    refuse it with a reason; (the decision, whether this call made it)."""
    plan, period = resolve(office.catalog, period_id, unit_id)
    current = await office.store.extension(period.id, unit_id)
    request = (current or {}).get("request") or {}
    if request.get("request_id") != request_id:
        raise Missing("no_request", "Không tìm thấy đề nghị gia hạn này của đơn vị.")
    wanted = "approved" if approve else "refused"
    if request.get("state") != PENDING:
        stored = await office.store.decision(period.id, request_id)
        if stored is not None and stored["decision"] == wanted:
            return stored, False
        raise Conflicting("already_decided", "Đề nghị gia hạn này đã được quyết định trước đó.")
    if not approve and not reason.strip():
        raise Invalid("reason_required", "Khi từ chối gia hạn cần ghi rõ lý do.")
    new_due = new_closes = None
    if approve:
        day = due_before or request["wanted_due_at"].astimezone(plan.tz).date()
        new_due, new_closes = extension_instants(plan, period, day)
    now = to_millis(office.clock.now())
    payload = ExtensionDecidedPayload(
        plan_id=plan.id,
        period_id=period.id,
        unit_id=unit_id,
        request_id=request_id,
        decision=wanted,
        reason=reason.strip(),
        due_at=period.due_at,
        new_due_at=new_due,
        new_closes_at=new_closes,
        decided_by=by.subject,
        decided_by_name=by.name,
        decided_at=now,
    )
    event = ExtensionDecided(
        occurred_at=now,
        producer=PRODUCER,
        correlation_id=_uuid(request_id) or uuid.uuid4(),
        causation_id=_uuid((current or {}).get("event_id")),
        payload=payload,
    )
    ref = Ref(MongoReviewStore.decisions_name(period.id), request_id)
    entry = await _announce(office, event, ref)
    document = {
        "_id": request_id,
        **payload.model_dump(mode="python", exclude={"request_id"}),
        "event_id": entry["_id"],
    }
    try:
        await office.store.add_decision(document)
    except AlreadyRecorded:
        await office.outbox.abandon(entry)
        stored = await office.store.decision(period.id, request_id)
        if stored is not None and stored["decision"] == wanted:
            await office.store.apply_decision(stored)
            return stored, False
        raise Conflicting(
            "already_decided", "Đề nghị gia hạn này đã được quyết định trước đó."
        ) from None
    await office.store.apply_decision(document)
    await _published(office, entry)
    return document, True


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
