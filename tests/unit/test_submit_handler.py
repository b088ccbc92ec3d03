"""Accepting a report (``handlers.submit``) against in-memory fakes of the store and outbox."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from pymongo.errors import AutoReconnect

from contracts.events import SubmissionReceived
from contracts.topics import SUBMISSION_RECEIVED
from services.common.clock import FixedClock
from services.common.mongo import Document
from services.common.outbox import READY
from services.common.reference import Catalog
from services.submissions.domain import SubmissionRejected, fingerprint
from services.submissions.handlers import (
    KEY_STALE_AFTER,
    KEY_TTL,
    MAX_REVISION_RACES,
    Intake,
    submit,
)
from services.submissions.models import SubmissionCreate
from services.submissions.store import KeyState, RevisionTaken, key_id
from tests.support.fakes import FakeSubmissionsStore, MemoryOutbox

pytestmark = pytest.mark.unit

SEED = Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
PERIOD = "kh-nq35-ngoc-hoi.2027.6-thang"
AT = dt.datetime(2027, 6, 1, 3, 4, 5, 678_901, tzinfo=dt.UTC)


class RacedStore(FakeSubmissionsStore):
    """A concurrent correction stores the revision we are about to write, ``races`` times.

    The rival is caught between its two writes: its revision is in the history, the unit's
    head does not show it yet, as after a crash or a slow request.
    """

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races
        self.tried_revisions: list[int] = []

    async def insert(self, submission: Document) -> None:
        self.inserts += 1
        self.tried_revisions.append(submission["revision"])
        if self.races > 0:
            self.races -= 1
            self.store(
                {
                    **copy.deepcopy(submission),
                    "_id": str(uuid.uuid4()),
                    "idempotency_id": None,
                    "receipt_no": "TN-RIVAL",
                    "event_id": "rival",
                }
            )
            raise RevisionTaken("E11000 one_document_per_revision")
        self.store(submission)


class HeadWriteFails(FakeSubmissionsStore):
    """MongoDB goes away between the history insert and the head update, once."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def advance_head(self, submission: Document) -> None:
        if self.failures:
            self.failures -= 1
            raise AutoReconnect("connection closed")
        await super().advance_head(submission)


class Harness:
    def __init__(self, store: FakeSubmissionsStore | None = None) -> None:
        self.store = store or FakeSubmissionsStore()
        self.clock = FixedClock(AT)
        self.outbox = MemoryOutbox(self.clock)
        self.wakes = 0
        self.intake = Intake(Catalog.load([SEED]), self.store, self.outbox, self.clock, self.wake)

    def wake(self) -> None:
        self.wakes += 1

    async def submit(self, key: str | None = None, **fields: Any) -> tuple[Document, bool]:
        return await submit(request(**fields), key, self.intake)


def request(**fields: Any) -> SubmissionCreate:
    body: dict[str, Any] = {
        "period_id": PERIOD,
        "unit_id": "xa-bo-y",
        "submitted_by": {"name": "Nguyễn Thị Hà"},
        "tasks": [
            {
                "task_id": "ii-1-1-tuyen-truyen-giao-duc",
                "status": "completed",
                "results": "Tổ chức 4 buổi quán triệt Nghị quyết 35-NQ/TW.",
                "indicators": [{"code": "so-buoi-tuyen-truyen", "value": 4}],
            }
        ],
    }
    body.update(fields)
    return SubmissionCreate.model_validate(body)


CORRECTION = [
    {
        "task_id": "ii-1-1-tuyen-truyen-giao-duc",
        "status": "completed",
        "results": "Bổ sung: tổ chức thêm 1 buổi tại thôn Đăk Giá.",
        "indicators": [{"code": "so-buoi-tuyen-truyen", "value": 5}],
    }
]


def event_of(h: Harness, document: Document) -> SubmissionReceived:
    """The event the outbox holds for ``document`` (the one its ``event_id`` names)."""
    [found] = [e for e in h.outbox.events() if str(e.event_id) == document["event_id"]]
    assert isinstance(found, SubmissionReceived)
    return found


async def test_a_first_submission_is_revision_one_and_superseded_nothing() -> None:
    h = Harness()

    doc, created = await h.submit()

    assert created is True
    assert (doc["revision"], doc["supersedes"]) == (1, None)
    assert doc["receipt_no"] == "TN-2027-000001"
    assert (doc["period_id"], doc["unit_id"]) == (PERIOD, "xa-bo-y")
    assert doc["received_at"] == AT.replace(microsecond=678_000)  # what BSON keeps
    assert doc["on_time"] is True
    assert h.store.documents == [doc]
    head = await h.store.head(PERIOD, "xa-bo-y")
    assert head is not None
    assert (head["submission_id"], head["revision"]) == (doc["_id"], 1)


async def test_a_correction_is_the_next_revision_and_supersedes_the_previous_one() -> None:
    h = Harness()
    first, _ = await h.submit()
    h.clock.advance(dt.timedelta(hours=2))

    second, created = await h.submit(tasks=CORRECTION)

    assert created is True
    assert (second["revision"], second["supersedes"]) == (2, first["_id"])
    assert second["_id"] != first["_id"]
    assert second["receipt_no"] == "TN-2027-000002"
    assert event_of(h, second).payload.supersedes == first["_id"]
    assert [d["revision"] for d in await h.store.history(PERIOD, "xa-bo-y")] == [1, 2]
    head = await h.store.head(PERIOD, "xa-bo-y")
    assert head is not None
    assert head["submission_id"] == second["_id"]


async def test_another_unit_starts_at_revision_one() -> None:
    h = Harness()
    await h.submit()

    doc, _ = await h.submit(unit_id="xa-dak-ang")

    assert (doc["revision"], doc["supersedes"]) == (1, None)


async def test_the_same_idempotency_key_answers_with_the_stored_document() -> None:
    h = Harness()
    first, _ = await h.submit("bo-y-2027-1")
    h.clock.advance(dt.timedelta(minutes=5))

    again, created = await h.submit("bo-y-2027-1")

    assert created is False
    assert again == first
    assert len(h.store.documents) == 1
    assert h.store.inserts == 1
    assert h.store.numbers_issued == 1  # no receipt number spent on a repeat
    assert len(h.outbox.all()) == 1  # and no second event


async def test_a_key_reused_for_another_report_is_refused_in_vietnamese() -> None:
    h = Harness()
    await h.submit("bo-y-2027-1")

    with pytest.raises(SubmissionRejected) as caught:
        await h.submit("bo-y-2027-1", tasks=CORRECTION)

    assert (caught.value.status, caught.value.code) == (422, "idempotency_key_reused")
    assert "khóa mới" in caught.value.message
    assert len(h.store.documents) == 1


async def test_an_idempotency_key_belongs_to_its_unit() -> None:
    h = Harness()
    first, _ = await h.submit("gui-lan-1")

    other, created = await h.submit("gui-lan-1", unit_id="xa-dak-ang")

    assert created is True
    assert other["_id"] != first["_id"]
    assert len(h.store.documents) == 2


async def test_a_key_whose_request_is_still_running_is_answered_409_and_stores_nothing() -> None:
    h = Harness()
    key = key_id("xa-bo-y", "bo-y-2027-1")
    await h.store.claim_key(key, fingerprint(request()), PERIOD, h.clock.now(), KEY_TTL)
    h.clock.advance(KEY_STALE_AFTER / 2)

    with pytest.raises(SubmissionRejected) as caught:
        await h.submit("bo-y-2027-1")

    assert (caught.value.status, caught.value.code) == (409, "request_in_progress")
    assert h.store.documents == []
    assert h.store.keys[key]["state"] == KeyState.IN_PROGRESS.value  # the owner keeps it


async def test_a_key_whose_request_died_before_storing_is_let_go() -> None:
    h = Harness()
    key = key_id("xa-bo-y", "bo-y-2027-1")
    await h.store.claim_key(key, fingerprint(request()), PERIOD, h.clock.now(), KEY_TTL)
    h.clock.advance(KEY_STALE_AFTER + dt.timedelta(seconds=1))

    with pytest.raises(SubmissionRejected) as caught:
        await h.submit("bo-y-2027-1")
    assert (caught.value.status, caught.value.code) == (409, "request_in_progress")
    assert key not in h.store.keys

    doc, created = await h.submit("bo-y-2027-1")  # the client's next retry goes through

    assert created is True
    assert h.store.keys[key]["submission_id"] == doc["_id"]


async def test_a_request_that_died_after_storing_is_finished_by_its_retry() -> None:
    h = Harness(HeadWriteFails())
    with pytest.raises(AutoReconnect):
        await h.submit("bo-y-2027-1")
    [stored] = h.store.documents
    [intent] = h.outbox.intents()  # not committed: the relay settles it (see outbox.py)
    assert stored["event_id"] == intent["_id"]
    assert await h.store.head(PERIOD, "xa-bo-y") is None
    h.clock.advance(KEY_STALE_AFTER + dt.timedelta(seconds=1))

    doc, created = await h.submit("bo-y-2027-1")

    assert created is False
    assert doc == stored
    head = await h.store.head(PERIOD, "xa-bo-y")
    assert head is not None
    assert head["submission_id"] == stored["_id"]
    key = h.store.keys[key_id("xa-bo-y", "bo-y-2027-1")]
    assert (key["state"], key["submission_id"]) == (KeyState.DONE.value, stored["_id"])
    assert h.store.inserts == 1


async def test_a_revision_taken_by_a_concurrent_correction_is_retried_with_the_next() -> None:
    store = RacedStore(races=1)
    h = Harness(store)

    doc, created = await h.submit()

    rival = next(d for d in store.documents if d["receipt_no"] == "TN-RIVAL")
    assert created is True
    assert store.tried_revisions == [1, 2]
    assert (doc["revision"], doc["supersedes"]) == (2, rival["_id"])
    assert event_of(h, doc).payload.revision == 2
    assert event_of(h, doc).payload.supersedes == rival["_id"]
    assert doc["receipt_no"] == "TN-2027-000001"
    # The event of the lost attempt was abandoned: only the stored revision is announced.
    assert [e["_id"] for e in h.outbox.all()] == [doc["event_id"]]
    assert h.wakes == 1


async def test_endless_revision_races_end_in_a_vietnamese_conflict() -> None:
    store = RacedStore(races=MAX_REVISION_RACES)
    h = Harness(store)

    with pytest.raises(SubmissionRejected) as caught:
        await h.submit("bo-y-2027-1")

    assert (caught.value.status, caught.value.code) == (409, "concurrent_update")
    assert "vui lòng gửi lại" in caught.value.message
    assert store.tried_revisions == list(range(1, MAX_REVISION_RACES + 1))
    assert all(d["receipt_no"] == "TN-RIVAL" for d in store.documents)
    assert h.outbox.all() == []
    assert store.keys == {}  # the key is free for the client's retry
    assert h.wakes == 0


async def test_the_stored_document_names_its_event_ready_in_the_outbox() -> None:
    h = Harness()

    doc, _ = await h.submit("bo-y-2027-1")

    stored = await h.store.get(PERIOD, doc["_id"])
    assert stored is not None
    [entry] = h.outbox.all()
    event = event_of(h, stored)
    assert entry["state"] == READY
    assert entry["_id"] == stored["event_id"] == str(event.event_id)
    assert entry["topic"] == SUBMISSION_RECEIVED.name
    assert entry["key"] == "xa-bo-y"
    assert entry["event_type"] == "submission.received"
    assert entry["ref"] == {"collection": f"submissions.{PERIOD}", "id": stored["_id"]}
    assert event.payload.receipt_no == stored["receipt_no"] == "TN-2027-000001"
    assert event.payload.submission_id == stored["_id"]
    assert event.payload.revision == stored["revision"]
    assert event.payload.received_at == stored["received_at"]
    assert event.payload.tasks[0].results == "Tổ chức 4 buổi quán triệt Nghị quyết 35-NQ/TW."
    assert stored["idempotency_id"] == "xa-bo-y|bo-y-2027-1"


async def test_without_a_key_each_submission_is_new() -> None:
    h = Harness()

    first, _ = await h.submit()
    second, created = await h.submit()

    assert created is True
    assert first["idempotency_id"] is None
    assert second["idempotency_id"] is None
    assert second["revision"] == 2
    assert len(h.store.documents) == 2
    assert h.store.keys == {}


async def test_the_relay_is_woken_once_per_created_submission() -> None:
    h = Harness()

    await h.submit("k-1")
    assert h.wakes == 1
    await h.submit("k-1")  # a repeat creates nothing
    assert h.wakes == 1
    await h.submit("k-2", tasks=CORRECTION)
    assert h.wakes == 2


async def test_a_repeat_after_the_period_closed_still_answers_with_the_stored_report() -> None:
    h = Harness()
    first, _ = await h.submit("bo-y-2027-1")
    period = h.intake.catalog.period(PERIOD)
    assert period is not None
    h.clock.at = period[1].closes_at + dt.timedelta(seconds=1)

    again, created = await h.submit("bo-y-2027-1")

    assert (again, created) == (first, False)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"unit_id": "ubnd-huyen"}, id="unit-not-reporting"),
        pytest.param({"period_id": "kh-nq35-ngoc-hoi.2027.hang-nam"}, id="period-not-open"),
        pytest.param(
            {
                "tasks": [
                    {
                        "task_id": "ii-6-dau-tranh-xu-ly-thong-tin-sai-lech",
                        "status": "completed",
                        "results": "Không thuộc đơn vị.",
                    }
                ]
            },
            id="task-not-assigned",
        ),
    ],
)
async def test_a_rejected_report_stores_nothing(fields: dict[str, Any]) -> None:
    h = Harness()

    with pytest.raises(SubmissionRejected):
        await h.submit("bo-y-2027-1", **fields)

    assert h.store.documents == []
    assert h.store.inserts == 0
    assert h.store.numbers_issued == 0  # no receipt number spent either
    assert h.store.keys == {}  # nor the key
    assert h.outbox.all() == []
    assert h.wakes == 0
