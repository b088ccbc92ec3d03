"""``MongoLedger.list`` on the real MongoDB-wire server: what the office sees per unit and
period (``GET /api/v1/notifications?unit=&period=``): pending notices, then finished ones."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from contracts.events import DeadlineOverdue, DeadlineOverduePayload
from services.notify.domain import Outgoing
from services.notify.sms_rules import Segments
from services.notify.store import FAILED, SENT, Failure, MongoLedger
from tests.conftest import Servers
from tests.support.mongo import throwaway_database

pytestmark = pytest.mark.integration

NOW = dt.datetime(2027, 6, 15, 1, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=120)


def outgoing(unit_id: str, period_id: str) -> Outgoing:
    cause = DeadlineOverdue(
        occurred_at=NOW,
        producer="deadlines",
        correlation_id=uuid.uuid4(),
        payload=DeadlineOverduePayload(
            plan_id="kh-nq35-ngoc-hoi",
            period_id=period_id,
            report_kind="6-thang",
            year=2027,
            due_at=NOW,
            unit_id=unit_id,
        ),
    )
    return Outgoing(
        notification_id=f"{cause.event_id}|overdue|email|{unit_id}@ngochoi.example",
        channel="email",
        template="overdue",
        recipient=f"{unit_id}@ngochoi.example",
        recipient_name="Cán bộ",
        subject="Quá hạn",
        text="…",
        unit_id=unit_id,
        plan_id="kh-nq35-ngoc-hoi",
        period_id=period_id,
        cause=cause,
    )


async def test_the_office_sees_one_units_notices_for_one_period(
    servers: Servers, namespace: str
) -> None:
    p1, p2 = "kh-nq35-ngoc-hoi.2027.6-thang", "kh-nq35-ngoc-hoi.2027.nam"
    async with throwaway_database(servers.mongo_uri, f"{namespace}_notify_list") as db:
        ledger = MongoLedger(db)
        sent, failed, pending, other_period, other_unit = (
            outgoing("xa-bo-y", p1),
            outgoing("xa-bo-y", p1),
            outgoing("xa-bo-y", p1),
            outgoing("xa-bo-y", p2),
            outgoing("xa-dak-xu", p1),
        )
        for message in (sent, failed, pending, other_period, other_unit):
            assert await ledger.claim(message, "here:1", NOW, LEASE)
        # As if an SMS: what it cost is kept with it.
        await ledger.finish(sent, SENT, 1, "e1", NOW, sms=Segments("ucs2", 3, 150))
        await ledger.attempted(failed.notification_id, 4, "421 4.7.0 try later", NOW)
        await ledger.finish(
            failed,
            FAILED,
            5,
            "e2",
            NOW + dt.timedelta(minutes=1),
            Failure("421 4.7.0 try later", permanent=False),
        )
        await ledger.finish(other_period, SENT, 1, "e3", NOW)
        await ledger.finish(other_unit, SENT, 1, "e4", NOW)

        listed = await ledger.list(100, unit_id="xa-bo-y", period_id=p1)
        by_unit = await ledger.list(100, unit_id="xa-bo-y")
        everything = await ledger.list(100)

    assert [(d["_id"], d["status"]) for d in listed] == [
        (pending.notification_id, "pending"),
        (failed.notification_id, FAILED),
        (sent.notification_id, SENT),
    ]
    assert "cause_json" not in listed[0]
    # A failed notice keeps its reason once it leaves the in-flight set; a sent one has none.
    assert (listed[1]["error"], listed[1]["permanent"]) == ("421 4.7.0 try later", False)
    assert "error" not in listed[2]
    assert (listed[2]["sms_segments"], listed[2]["sms_encoding"]) == (3, "ucs2")
    assert len(by_unit) == 4
    assert len(everything) == 5
