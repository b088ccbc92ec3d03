"""Who receives which notice, from the plan's contact data alone: officers every notice, a
unit's head the escalation of a missed deadline, SMS only to those who asked for it."""

from __future__ import annotations

import copy
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.events import (
    DeadlineApproaching,
    DeadlineApproachingPayload,
    DeadlineOverdue,
    DeadlineOverduePayload,
)
from contracts.plan import Plan
from services.notify.domain import messages_for

pytestmark = pytest.mark.unit

SEED = Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
DUE_AT = dt.datetime(2027, 6, 14, 17, 0, tzinfo=dt.UTC)
REF: dict[str, Any] = {
    "plan_id": "kh-nq35-ngoc-hoi",
    "period_id": "kh-nq35-ngoc-hoi.2027.6-thang",
    "report_kind": "6-thang",
    "year": 2027,
    "due_at": DUE_AT,
    "unit_id": "xa-bo-y",
}
CONTACTS = [
    {"name": "A Khánh", "email": "canbo@ngochoi.example", "phone": "+84 900 000 028",
     "receives": ["email", "sms"]},
    {"name": "Hồ Thị Xuân", "duty": "head", "email": "chutich@ngochoi.example",
     "phone": "+84 900 000 029", "receives": ["email", "sms"]},
    {"name": "Y Blông", "phone": "+84.900.000.030", "receives": ["sms"]},
]  # fmt: skip


def plan_with(contacts: list[dict[str, Any]]) -> Plan:
    raw = copy.deepcopy(yaml.safe_load(SEED.read_text(encoding="utf-8")))
    next(u for u in raw["units"] if u["id"] == "xa-bo-y")["contacts"] = contacts
    return Plan.model_validate(raw)


def envelope() -> dict[str, Any]:
    return {"occurred_at": DUE_AT, "producer": "deadlines", "correlation_id": uuid.uuid4()}


def test_a_reminder_goes_to_the_officers_and_an_overdue_notice_to_the_head_too() -> None:
    plan = plan_with(CONTACTS)
    reminder = DeadlineApproaching(
        **envelope(),
        payload=DeadlineApproachingPayload(**REF, days_before=3, reminder_at=DUE_AT),
    )
    overdue = DeadlineOverdue(**envelope(), payload=DeadlineOverduePayload(**REF))

    reminded = messages_for(reminder, plan, channels=("email", "sms"))
    escalated = messages_for(overdue, plan, channels=("email", "sms"))

    assert [(m.channel, m.recipient) for m in reminded] == [
        ("email", "canbo@ngochoi.example"),
        ("sms", "+84900000028"),
        ("sms", "+84900000030"),
    ]
    assert [(m.channel, m.recipient) for m in escalated] == [
        ("email", "canbo@ngochoi.example"),
        ("email", "chutich@ngochoi.example"),
        ("sms", "+84900000028"),
        ("sms", "+84900000029"),
        ("sms", "+84900000030"),
    ]


def test_without_the_sms_channel_nobody_gets_an_sms() -> None:
    overdue = DeadlineOverdue(**envelope(), payload=DeadlineOverduePayload(**REF))

    messages = messages_for(overdue, plan_with(CONTACTS))

    assert {m.channel for m in messages} == {"email"}
