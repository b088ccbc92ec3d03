"""Accepting a report (``handlers.submit``) against an in-memory store."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError

from contracts.events import SubmissionReceived
from contracts.topics import SUBMISSION_RECEIVED
from services.common.clock import FixedClock
from services.common.mongo import Document
from services.common.reference import Catalog
from services.submissions.domain import SubmissionRejected
from services.submissions.handlers import MAX_REVISION_RACES, submit
from services.submissions.models import SubmissionCreate
from services.submissions.store import RevisionTaken, SubmissionsStore

pytestmark = pytest.mark.unit

SEED = Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
PERIOD = "kh-nq35-ngoc-hoi.2027.6-thang"
AT = dt.datetime(2027, 6, 1, 3, 4, 5, 678_901, tzinfo=dt.UTC)


class FakeSubmissionsStore(SubmissionsStore):
    """Keeps what MongoDB would: copies in, copies out, the same two unique keys."""

    def __init__(self) -> None:
        self.documents: list[Document] = []
        self.sequences: dict[str, int] = {}
        self.inserts = 0

    async def next_sequence(self, name: str) -> int:
        self.sequences[name] = self.sequences.get(name, 0) + 1
        return self.sequences[name]

    async def latest(self, period_id: str, unit_id: str) -> Document | None:
        mine = await self.history(period_id, unit_id)
        return mine[-1] if mine else None

    async def by_idempotency_key(self, unit_id: str, key: str) -> Document | None:
        wanted = f"{unit_id}|{key}"
        found = [d for d in self.documents if d["idempotency_id"] == wanted]
        return copy.deepcopy(found[0]) if found else None

    async def insert(self, submission: Document) -> None:
        self.inserts += 1
        self._insert(submission)

    def _insert(self, submission: Document) -> None:
        if any(d["idempotency_id"] == submission["idempotency_id"] for d in self.documents):
            raise DuplicateKeyError("E11000 duplicate key: idempotency_id_1")
        if any(
            (d["period_id"], d["unit_id"], d["revision"])
            == (submission["period_id"], submission["unit_id"], submission["revision"])
            for d in self.documents
        ):
            raise RevisionTaken("one_document_per_revision")
        self.documents.append(copy.deepcopy(submission))

    async def get(self, submission_id: str) -> Document | None:
        found = [d for d in self.documents if d["_id"] == submission_id]
        return copy.deepcopy(found[0]) if found else None

    async def history(self, period_id: str, unit_id: str) -> list[Document]:
        mine = [d for d in self.documents if (d["period_id"], d["unit_id"]) == (period_id, unit_id)]
        return [copy.deepcopy(d) for d in sorted(mine, key=lambda d: d["revision"])]


class RacedStore(FakeSubmissionsStore):
    """A concurrent correction stores the revision we are about to write, ``races`` times."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races
        self.tried_revisions: list[int] = []

    async def insert(self, submission: Document) -> None:
        self.inserts += 1
        self.tried_revisions.append(submission["revision"])
        if self.races > 0:
            self.races -= 1
            rival = {
                **copy.deepcopy(submission),
                "_id": str(uuid.uuid4()),
                "idempotency_id": f"-|rival-{uuid.uuid4()}",
                "receipt_no": "TN-RIVAL",
            }
            self._insert(rival)
            raise RevisionTaken("one_document_per_revision")
        self._insert(submission)


class Harness:
    def __init__(self, store: FakeSubmissionsStore | None = None) -> None:
        self.catalog = Catalog.load([SEED])
        self.store = store or FakeSubmissionsStore()
        self.clock = FixedClock(AT)
        self.wakes = 0

    def wake(self) -> None:
        self.wakes += 1

    async def submit(self, key: str | None = None, **fields: Any) -> tuple[Document, bool]:
        return await submit(
            request(**fields),
            key,
            catalog=self.catalog,
            store=self.store,
            clock=self.clock,
            wake_relay=self.wake,
        )


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


def event_of(document: Document) -> SubmissionReceived:
    return SubmissionReceived.model_validate_json(document["outbox"]["event_json"])


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


async def test_a_correction_is_the_next_revision_and_supersedes_the_previous_one() -> None:
    h = Harness()
    first, _ = await h.submit()
    h.clock.advance(dt.timedelta(hours=2))

    second, created = await h.submit(
        tasks=[
            {
                "task_id": "ii-1-1-tuyen-truyen-giao-duc",
                "status": "completed",
                "results": "Bổ sung: tổ chức thêm 1 buổi tại thôn Đăk Giá.",
                "indicators": [{"code": "so-buoi-tuyen-truyen", "value": 5}],
            }
        ]
    )

    assert created is True
    assert (second["revision"], second["supersedes"]) == (2, first["_id"])
    assert second["_id"] != first["_id"]
    assert second["receipt_no"] == "TN-2027-000002"
    assert event_of(second).payload.supersedes == first["_id"]
    assert [d["revision"] for d in await h.store.history(PERIOD, "xa-bo-y")] == [1, 2]


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
    assert h.store.sequences == {"receipt": 1}  # no receipt number spent on a retry


async def test_an_idempotency_key_belongs_to_its_unit() -> None:
    h = Harness()
    first, _ = await h.submit("gui-lan-1")

    other, created = await h.submit("gui-lan-1", unit_id="xa-dak-ang")

    assert created is True
    assert other["_id"] != first["_id"]
    assert len(h.store.documents) == 2


async def test_a_revision_taken_by_a_concurrent_correction_is_retried_with_the_next() -> None:
    store = RacedStore(races=1)
    h = Harness(store)

    doc, created = await h.submit()

    rival = next(d for d in store.documents if d["receipt_no"] == "TN-RIVAL")
    assert created is True
    assert store.tried_revisions == [1, 2]
    assert (doc["revision"], doc["supersedes"]) == (2, rival["_id"])
    assert event_of(doc).payload.revision == 2
    assert event_of(doc).payload.supersedes == rival["_id"]
    assert doc["receipt_no"] == "TN-2027-000001"
    assert h.wakes == 1


async def test_endless_revision_races_end_in_a_vietnamese_conflict() -> None:
    store = RacedStore(races=MAX_REVISION_RACES)
    h = Harness(store)

    with pytest.raises(SubmissionRejected) as caught:
        await h.submit()

    assert (caught.value.status, caught.value.code) == (409, "concurrent_update")
    assert "vui lòng gửi lại" in caught.value.message
    assert store.tried_revisions == list(range(1, MAX_REVISION_RACES + 1))
    assert all(d["receipt_no"] == "TN-RIVAL" for d in store.documents)
    assert h.wakes == 0


class KeyRaceStore(FakeSubmissionsStore):
    """Another request with the same idempotency key is stored between our look-up and insert."""

    def __init__(self) -> None:
        super().__init__()
        self.winner: Document | None = None

    async def by_idempotency_key(self, unit_id: str, key: str) -> Document | None:
        if self.winner is None:
            return None
        return await super().by_idempotency_key(unit_id, key)

    async def insert(self, submission: Document) -> None:
        if self.winner is None:
            self.winner = {
                **copy.deepcopy(submission),
                "_id": "ban-thang-cuoc",
                "receipt_no": "TN-2027-999999",
            }
            self._insert(self.winner)
        await super().insert(submission)


async def test_a_lost_idempotency_race_answers_with_the_winner() -> None:
    store = KeyRaceStore()
    h = Harness(store)

    doc, created = await h.submit("bo-y-2027-1")

    assert created is False
    assert doc["_id"] == "ban-thang-cuoc"
    assert [d["_id"] for d in store.documents] == ["ban-thang-cuoc"]
    assert h.wakes == 0


async def test_the_stored_document_carries_its_event_in_a_pending_outbox_entry() -> None:
    h = Harness()

    doc, _ = await h.submit("bo-y-2027-1")

    stored = await h.store.get(doc["_id"])
    assert stored is not None
    outbox = stored["outbox"]
    event = event_of(stored)
    assert outbox["pending"] is True
    assert outbox["topic"] == SUBMISSION_RECEIVED.name
    assert outbox["key"] == "xa-bo-y"
    assert outbox["event_id"] == str(event.event_id)
    assert outbox["event_type"] == "submission.received"
    assert event.payload.receipt_no == stored["receipt_no"] == "TN-2027-000001"
    assert event.payload.submission_id == stored["_id"]
    assert event.payload.revision == stored["revision"]
    assert event.payload.received_at == stored["received_at"]
    assert event.payload.tasks[0].results == "Tổ chức 4 buổi quán triệt Nghị quyết 35-NQ/TW."
    assert stored["idempotency_id"] == "xa-bo-y|bo-y-2027-1"


async def test_without_a_key_each_submission_gets_its_own_idempotency_id() -> None:
    h = Harness()

    first, _ = await h.submit()
    second, _ = await h.submit()

    assert first["idempotency_id"] == f"-|{first['_id']}"
    assert second["idempotency_id"] == f"-|{second['_id']}"
    assert len(h.store.documents) == 2


async def test_the_relay_is_woken_once_per_created_submission() -> None:
    h = Harness()

    await h.submit("k-1")
    assert h.wakes == 1
    await h.submit("k-1")  # a retry creates nothing
    assert h.wakes == 1
    await h.submit("k-2")
    assert h.wakes == 2


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
    assert h.store.sequences == {}  # no receipt number spent either
    assert h.wakes == 0
