"""Accepting a report: validate, number it, store it with its event in one write."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from pymongo.errors import DuplicateKeyError

from services.common.clock import Clock
from services.common.mongo import Document, to_millis
from services.common.outbox import outbox_entry
from services.common.reference import Catalog
from services.submissions import domain
from services.submissions.models import SubmissionCreate
from services.submissions.store import RevisionTaken, SubmissionsStore, idempotency_id

MAX_REVISION_RACES = 5


async def submit(
    request: SubmissionCreate,
    idempotency_key: str | None,
    *,
    catalog: Catalog,
    store: SubmissionsStore,
    clock: Clock,
    wake_relay: Callable[[], None],
) -> tuple[Document, bool]:
    """The stored submission and whether this call created it (False: a retried request)."""
    if idempotency_key:
        earlier = await store.by_idempotency_key(request.unit_id, idempotency_key)
        if earlier is not None:
            return earlier, False
    received_at = to_millis(clock.now())
    plan, period = domain.check(request, catalog, received_at)
    receipt = domain.receipt_no(received_at, plan, await store.next_sequence("receipt"))
    for _ in range(MAX_REVISION_RACES):
        previous = await store.latest(period.id, request.unit_id)
        submission_id = uuid.uuid4()
        event = domain.accepted_event(
            request,
            plan,
            period,
            submission_id=submission_id,
            receipt=receipt,
            revision=previous["revision"] + 1 if previous else 1,
            supersedes=previous["_id"] if previous else None,
            received_at=received_at,
        )
        document = {
            "_id": str(submission_id),
            **event.payload.model_dump(mode="python", exclude={"submission_id"}),
            "idempotency_id": idempotency_id(request.unit_id, idempotency_key, str(submission_id)),
            "outbox": outbox_entry(event),
        }
        try:
            await store.insert(document)
        except RevisionTaken:
            continue  # a concurrent correction took this revision number: take the next
        except DuplicateKeyError:
            # The same idempotency key won a race with us: answer with its receipt.
            earlier = await store.by_idempotency_key(request.unit_id, idempotency_key or "")
            if earlier is None:
                raise
            return earlier, False
        wake_relay()
        return document, True
    raise domain.SubmissionRejected(
        409, "concurrent_update", "Báo cáo đang được cập nhật đồng thời; vui lòng gửi lại."
    )
