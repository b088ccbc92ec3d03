"""The stores of the office's decisions against the real MongoDB-wire server: what their unique
``_id``s decide, what a crash between two writes leaves and how it is repaired, and what a late
filing reads (by ``_id`` only, on small collections)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from contracts.events import (
    ExtensionDecidedPayload,
    FilingExceptionGrantedPayload,
    ReportReviewedPayload,
)
from services.common.clock import FixedClock
from services.common.mongo import Document
from services.consolidate.store import MongoTermsStore as ConsolidateTerms
from services.deadlines.domain import UnitDue
from services.deadlines.store import MongoTermsStore as DeadlinesTerms
from services.submissions.handlers import Intake, submit
from services.submissions.review_store import (
    AlreadyRecorded,
    MongoReviewStore,
    decided_request,
)
from services.submissions.store import HEADS
from tests.conftest import Servers
from tests.support.mongo import CommandLog, explain_find, is_ferretdb, throwaway_database
from tests.support.submissions import SEED_PERIOD, intake, report

pytestmark = pytest.mark.integration

DUE = dt.datetime(2027, 6, 14, 17, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@dataclass
class Db:
    db: AsyncDatabase[Document]
    log: CommandLog


@pytest.fixture
async def mongo(servers: Servers, namespace: str) -> AsyncIterator[Db]:
    log = CommandLog()
    async with throwaway_database(servers.mongo_uri, f"{namespace}_decisions", log) as db:
        yield Db(db, log)


def review_doc(revision: int, decision: str = "returned") -> Document:
    return {
        "_id": f"xa-bo-y|{revision}",
        "plan_id": "kh-nq35-ngoc-hoi",
        "period_id": SEED_PERIOD,
        "unit_id": "xa-bo-y",
        "submission_id": "s",
        "revision": revision,
        "decision": decision,
        "comment": "Bổ sung.",
        "reviewer": "tonghop",
        "reviewer_name": "",
        "reviewed_at": DUE - DAY,
        "resubmit_by": DUE + 4 * DAY,
        "event_id": str(uuid.uuid4()),
    }


async def test_a_version_is_reviewed_once_and_the_head_carries_the_hint(mongo: Db) -> None:
    store = MongoReviewStore(mongo.db)
    await mongo.db[HEADS + SEED_PERIOD].insert_one({"_id": "xa-bo-y", "revision": 1})
    await store.add_review(review_doc(1))
    with pytest.raises(AlreadyRecorded):
        await store.add_review(review_doc(1, "accepted"))

    await store.mark_head(SEED_PERIOD, "xa-bo-y", {"revision": 1, "decision": "returned"})

    head = await mongo.db[HEADS + SEED_PERIOD].find_one({"_id": "xa-bo-y"})
    assert head is not None and head["review"] == {"revision": 1, "decision": "returned"}
    assert [r["revision"] for r in await store.reviews(SEED_PERIOD, "xa-bo-y")] == [1]
    assert (await store.review(SEED_PERIOD, "xa-bo-y|1") or {})["decision"] == "returned"


def request_doc(request_id: str) -> Document:
    return {
        "request_id": request_id,
        "plan_id": "kh-nq35-ngoc-hoi",
        "period_id": SEED_PERIOD,
        "unit_id": "xa-bo-y",
        "reason": "Nghỉ ốm.",
        "due_at": DUE,
        "wanted_due_at": DUE + 5 * DAY,
        "requested_by": "canbo",
        "requested_at": DUE - 3 * DAY,
        "state": "pending",
    }


def decision_doc(request_id: str, decision: str = "approved") -> Document:
    return {
        "_id": request_id,
        "plan_id": "kh-nq35-ngoc-hoi",
        "period_id": SEED_PERIOD,
        "unit_id": "xa-bo-y",
        "decision": decision,
        "reason": "",
        "due_at": DUE,
        "new_due_at": DUE + 5 * DAY,
        "new_closes_at": DUE + 20 * DAY,
        "decided_by": "tonghop",
        "decided_at": DUE - 2 * DAY,
        "event_id": str(uuid.uuid4()),
    }


async def test_a_request_is_decided_once_and_a_decision_left_uncopied_is_copied_on_read(
    mongo: Db,
) -> None:
    store = MongoReviewStore(mongo.db)
    await store.put_request(request_doc("r1"), "e1")
    await store.add_decision(decision_doc("r1"))
    with pytest.raises(AlreadyRecorded):
        await store.add_decision(decision_doc("r1", "refused"))
    # Not applied: as after a crash between the two writes.
    raw = await mongo.db["extensions." + SEED_PERIOD].find_one({"_id": "xa-bo-y"})
    assert raw is not None and raw["request"]["state"] == "pending"

    current = await store.extension(SEED_PERIOD, "xa-bo-y")

    assert current is not None
    assert current["request"] == decided_request(request_doc("r1"), decision_doc("r1"))
    assert current["granted"] == {
        "request_id": "r1",
        "due_at": DUE + 5 * DAY,
        "closes_at": DUE + 20 * DAY,
    }
    # A new request keeps the extension in force until it is decided.
    await store.put_request(request_doc("r2"), "e2")
    again = await store.extension(SEED_PERIOD, "xa-bo-y")
    assert again is not None
    assert (again["request"]["request_id"], again["granted"]["request_id"]) == ("r2", "r1")
    # A decision of a replaced request changes nothing.
    await store.apply_decision(decision_doc("r1", "refused"))
    assert await store.extension(SEED_PERIOD, "xa-bo-y") == again
    assert [d["_id"] for d in await store.extensions(SEED_PERIOD)] == ["xa-bo-y"]


async def test_a_new_exception_replaces_the_units_earlier_one(mongo: Db) -> None:
    store = MongoReviewStore(mongo.db)
    for until in (DUE + 20 * DAY, DUE + 22 * DAY):
        await store.put_exception(
            {"_id": "xa-bo-y", "period_id": SEED_PERIOD, "unit_id": "xa-bo-y", "until": until}
        )
    found = await store.exceptions(SEED_PERIOD)
    assert [(d["_id"], d["until"]) for d in found] == [("xa-bo-y", DUE + 22 * DAY)]


async def test_a_late_filing_reads_the_units_terms_by_id_only(mongo: Db) -> None:
    """Before the due date intake reads nothing of the office's decisions (the hot-path guard
    in test_hot_queries); after it, one ``_id`` lookup in each of two small collections."""
    clock = FixedClock(DUE + DAY)
    intake_: Intake = await intake(mongo.db, clock)
    decisions = MongoReviewStore(mongo.db)
    intake_ = Intake(
        intake_.catalog, intake_.store, intake_.outbox, clock, lambda: None, decisions=decisions
    )
    await decisions.put_request(request_doc("r1"), "e1")  # collections exist for explain
    await decisions.put_exception(
        {"_id": "xa-a", "period_id": SEED_PERIOD, "unit_id": "xa-a", "until": DUE}
    )

    with mongo.log.recording() as commands:
        stored, _ = await submit(report("Gửi muộn"), None, intake_)

    assert stored["on_time"] is False
    mine = {"extensions." + SEED_PERIOD, "exceptions." + SEED_PERIOD}
    reads = [c for c in commands if c.collection in mine]
    assert sorted(str(c.collection) for c in reads) == sorted(mine)
    for command in reads:
        assert command.name == "find"
        assert command.filters == ({"_id": "xa-bo-y"},)
        explained = await explain_find(mongo.db, command.collection or "", command.filters[0])
        if is_ferretdb(explained):
            assert explained["filterPushdown"] is True


def decided(unit_id: str, at: dt.datetime, due: dt.datetime) -> ExtensionDecidedPayload:
    return ExtensionDecidedPayload(
        plan_id="kh-nq35-ngoc-hoi",
        period_id=SEED_PERIOD,
        unit_id=unit_id,
        request_id=str(uuid.uuid4()),
        decision="approved",
        due_at=DUE,
        new_due_at=due,
        new_closes_at=due + 15 * DAY,
        decided_by="tonghop",
        decided_at=at,
    )


async def test_deadlines_and_consolidate_keep_the_latest_extension(mongo: Db) -> None:
    deadlines, consolidate = DeadlinesTerms(mongo.db), ConsolidateTerms(mongo.db)
    later = decided("xa-bo-y", DUE - DAY, DUE + 5 * DAY)
    earlier = decided("xa-bo-y", DUE - 2 * DAY, DUE + 2 * DAY)
    for store in (deadlines, consolidate):
        await store.record_extension(later)
        await store.record_extension(earlier)  # redelivered late: changes nothing

    assert await deadlines.extended([SEED_PERIOD, "khac"]) == {
        SEED_PERIOD: {"xa-bo-y": UnitDue(DUE + 5 * DAY, DUE + 20 * DAY)}
    }
    returned = ReportReviewedPayload(
        plan_id="kh-nq35-ngoc-hoi",
        period_id=SEED_PERIOD,
        unit_id="xa-dak-ang",
        review_id="xa-dak-ang|1",
        submission_id="s",
        revision=1,
        decision="returned",
        comment="Bổ sung.",
        reviewer="tonghop",
        reviewed_at=DUE - DAY,
        resubmit_by=DUE + 4 * DAY,
    )
    await consolidate.record_return(returned)
    await consolidate.record_return(returned)  # redelivered
    terms = await consolidate.terms(SEED_PERIOD)
    assert terms["xa-bo-y"].due_at == DUE + 5 * DAY
    assert dict(terms["xa-dak-ang"].returned) == {1: DUE + 4 * DAY}
    assert terms["xa-dak-ang"].due_at is None


async def test_consolidate_keeps_the_latest_filing_exception_once(mongo: Db) -> None:
    consolidate = ConsolidateTerms(mongo.db)

    def granted(at: dt.datetime, until: dt.datetime) -> FilingExceptionGrantedPayload:
        return FilingExceptionGrantedPayload(
            plan_id="kh-nq35-ngoc-hoi",
            period_id=SEED_PERIOD,
            unit_id="xa-sa-loong",
            exception_id=f"e-{at:%d%H}",
            reason="Lũ cắt đường.",
            until=until,
            granted_by="tonghop",
            granted_at=at,
        )

    later = granted(DUE + DAY, DUE + 20 * DAY)
    await consolidate.record_exception(later)
    await consolidate.record_exception(later)  # redelivered
    await consolidate.record_exception(granted(DUE, DUE + 18 * DAY))  # older, arriving late

    terms = await consolidate.terms(SEED_PERIOD)
    assert terms["xa-sa-loong"].exception_until == DUE + 20 * DAY
    assert (terms["xa-sa-loong"].due_at, dict(terms["xa-sa-loong"].returned)) == (None, {})
    assert await mongo.db["exceptions." + SEED_PERIOD].count_documents({}) == 1
