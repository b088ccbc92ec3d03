"""Accepting a report: validate, number it, store it with its event, answer once per key."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from contracts.events import AttachmentRef
from contracts.plan import Plan
from services.common.admission import Admission
from services.common.clock import Clock
from services.common.consumer import MAX_EVENT_BYTES
from services.common.locks import KeyedLocks
from services.common.mongo import Document, to_millis
from services.common.outbox import Outbox, Ref, document_with_event
from services.common.periods import Period
from services.common.reference import Catalog
from services.submissions import domain, review
from services.submissions.attachment_store import AttachmentStore, UnknownAttachments
from services.submissions.models import SubmissionCreate
from services.submissions.review import UnitTerms
from services.submissions.review_handlers import unit_terms
from services.submissions.review_store import ReviewStore
from services.submissions.store import (
    KeyClaim,
    KeyState,
    MongoSubmissionsStore,
    RevisionTaken,
    SubmissionsStore,
    key_id,
)

MAX_REVISION_RACES = 50
"""Corrections of one unit racing each other; each lost race costs one insert."""
KEY_TTL = dt.timedelta(hours=24)
KEY_STALE_AFTER = dt.timedelta(seconds=30)
"""A claimed key whose request has not finished by then is taken for dead (see ``_resume``)."""


@dataclass(frozen=True)
class Intake:
    catalog: Catalog
    store: SubmissionsStore
    outbox: Outbox
    clock: Clock
    wake_relay: Callable[[], None]
    unit_locks: KeyedLocks = field(default_factory=KeyedLocks)
    admission: Admission = field(default_factory=lambda: Admission(8, 64, 5.0))
    decisions: ReviewStore | None = None
    """The office's decisions (extensions, exceptions) a late report is judged by."""
    attachments: AttachmentStore | None = None
    """Files a report may attach (by id); none can be attached without it."""


async def submit(
    request: SubmissionCreate, idempotency_key: str | None, intake: Intake
) -> tuple[Document, bool]:
    """The stored submission and whether this call created it (False: a repeated request)."""
    received_at = to_millis(intake.clock.now())
    if idempotency_key is None:
        terms = await terms_for(request, received_at, intake)
        plan, period = domain.check(request, intake.catalog, received_at, terms)
        return await _store(request, plan, period, terms, received_at, None, intake), True
    # The key first: a repeat of a stored report is answered with it even after the period
    # closed, and a refused request releases the key it claimed.
    key = key_id(request.unit_id, idempotency_key)
    fingerprint = domain.fingerprint(request)
    claim = await intake.store.claim_key(key, fingerprint, request.period_id, received_at, KEY_TTL)
    if claim.state is not KeyState.NEW:
        return await _earlier(claim, key, fingerprint, request, intake), False
    try:
        terms = await terms_for(request, received_at, intake)
        plan, period = domain.check(request, intake.catalog, received_at, terms)
        stored = await _store(request, plan, period, terms, received_at, key, intake)
    except domain.SubmissionRejected:
        await intake.store.release_key(key)
        raise
    await intake.store.complete_key(key, stored["_id"])
    return stored, True


async def terms_for(request: SubmissionCreate, now: dt.datetime, intake: Intake) -> UnitTerms:
    """What office staff granted the unit for the period (read only once it is due)."""
    found = intake.catalog.period(request.period_id)
    if found is None:
        return UnitTerms()
    return await unit_terms(intake.decisions, found[1], request.unit_id, now)


async def _earlier(
    claim: KeyClaim, key: str, fingerprint: str, request: SubmissionCreate, intake: Intake
) -> Document:
    """The answer to a repeated key (IETF draft "The Idempotency-Key HTTP Header Field")."""
    if claim.fingerprint != fingerprint:
        raise domain.SubmissionRejected(
            422,
            "idempotency_key_reused",
            "Khóa Idempotency-Key này đã được dùng cho một báo cáo khác; "
            "mỗi báo cáo mới cần một khóa mới.",
        )
    period_id = claim.period_id or request.period_id
    if claim.state is KeyState.DONE and claim.submission_id:
        done = await intake.store.get(period_id, claim.submission_id)
        if done is not None:
            return done
    stale = claim.claimed_at is None or (intake.clock.now() - claim.claimed_at > KEY_STALE_AFTER)
    if not stale:
        raise domain.SubmissionRejected(
            409,
            "request_in_progress",
            "Yêu cầu với cùng khóa Idempotency-Key đang được xử lý; vui lòng thử lại sau.",
        )
    return await _resume(key, period_id, intake)


async def _resume(key: str, period_id: str, intake: Intake) -> Document:
    """The request holding ``key`` died: finish what it stored, or let the key go."""
    stored = await intake.store.by_idempotency_id(period_id, key)
    if stored is not None:
        await intake.store.advance_head(stored)
        await intake.store.complete_key(key, stored["_id"])
        return stored
    await intake.store.release_key(key)
    raise domain.SubmissionRejected(
        409,
        "request_in_progress",
        "Yêu cầu trước với cùng khóa chưa hoàn tất và đã được hủy; vui lòng gửi lại.",
    )


async def _store(
    request: SubmissionCreate,
    plan: Plan,
    period: Period,
    terms: UnitTerms,
    received_at: dt.datetime,
    key: str | None,
    intake: Intake,
) -> Document:
    store = intake.store
    attached = await _attach(request, period, intake)
    receipt = domain.receipt_no(received_at, plan, await store.next_receipt_number())
    # Corrections of one unit queue here instead of racing for each revision number; races
    # remain only between replicas, and the unique index decides them (``_after_race``).
    async with intake.unit_locks.hold(f"{period.id}|{request.unit_id}"):
        return await _store_revision(
            request, plan, period, terms, received_at, key, receipt, intake, attached
        )


async def _attach(request: SubmissionCreate, period: Period, intake: Intake) -> list[AttachmentRef]:
    """The report's files, by reference, made part of it before it is stored: a file being
    deleted at the same moment is either kept for the report or refused here, never lost."""
    if not request.attachments:
        return []
    try:
        if intake.attachments is None:
            raise UnknownAttachments(request.attachments)
        marked = await intake.attachments.mark_submitted(
            period.id, request.unit_id, request.attachments
        )
    except UnknownAttachments as error:
        raise domain.SubmissionRejected(
            422,
            "unknown_attachment",
            "Không tìm thấy tệp đính kèm "
            + ", ".join(f"“{i}”" for i in error.ids)
            + " của đơn vị trong kỳ báo cáo này; hãy tải tệp lên trước khi gửi báo cáo.",
            [{"field": "attachments", "attachment_id": i} for i in error.ids],
        ) from None
    return [attachment.ref() for attachment in marked]


async def _store_revision(
    request: SubmissionCreate,
    plan: Plan,
    period: Period,
    terms: UnitTerms,
    received_at: dt.datetime,
    key: str | None,
    receipt: str,
    intake: Intake,
    attached: Sequence[AttachmentRef] = (),
) -> Document:
    store, outbox = intake.store, intake.outbox
    previous = await store.head(period.id, request.unit_id)
    for _ in range(MAX_REVISION_RACES):
        revision = previous["revision"] + 1 if previous else 1
        submission_id = uuid.uuid4()
        event = domain.accepted_event(
            request,
            plan,
            period,
            submission_id=submission_id,
            receipt=receipt,
            revision=revision,
            supersedes=previous["submission_id"] if previous else None,
            received_at=received_at,
            due_at=terms.due(period),
            # A resubmission of a returned version may keep its timeliness (``review``).
            on_time=review.on_time(received_at, terms.due(period), review.previous_from(previous)),
            attachments=attached,
        )
        ref = Ref(MongoSubmissionsStore.history_name(period.id), str(submission_id))
        entry = await outbox.intend(event, ref)
        if len(entry["event_json"].encode()) > MAX_EVENT_BYTES:
            # Refused here rather than parked by the relay: the unit learns it now.
            await outbox.abandon(entry)
            raise domain.SubmissionRejected(
                413,
                "report_too_large",
                "Báo cáo quá lớn để chuyển đi; vui lòng rút gọn nội dung hoặc gửi phần dài "
                "dưới dạng tệp đính kèm.",
            )
        document = document_with_event(
            {
                "_id": str(submission_id),
                **event.payload.model_dump(mode="python", exclude={"submission_id"}),
                "idempotency_id": key,
            },
            entry,
        )
        try:
            await store.insert(document)
        except RevisionTaken:
            await outbox.abandon(entry)
            previous = await _after_race(store, period.id, request.unit_id, revision)
            continue
        await store.advance_head(document)
        await outbox.commit(entry)
        intake.wake_relay()
        return document
    raise domain.SubmissionRejected(
        409, "concurrent_update", "Báo cáo đang được cập nhật đồng thời; vui lòng gửi lại."
    )


async def _after_race(
    store: SubmissionsStore, period_id: str, unit_id: str, taken: int
) -> Document | None:
    """The revision to build on after ``taken`` turned out to exist already."""
    head = await store.head(period_id, unit_id)
    if head is not None and head["revision"] >= taken:
        return head
    # The head lags (its writer is between two writes, or died there): ask the history.
    latest = await store.latest_in_history(period_id, unit_id)
    if latest is None:
        return head
    await store.advance_head(latest)
    return {**latest, "submission_id": latest["_id"]}
