"""Who receives which notice, from the plan's data alone: a ladder rung's ``reaches`` picks the
unit's officers and/or its head, an overdue notice from before the ladder goes to the head
too, SMS only to those who asked for it."""

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


def test_without_a_rung_a_reminder_goes_to_officers_and_an_overdue_notice_to_the_head_too() -> None:
    """Events from before the ladder (no ``rung``) keep the rule they were sent under."""
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


def plan_with_ladder(reaches: dict[int, list[str]]) -> Plan:
    """The seed plan with CONTACTS, the 6-month ladder's rung ``i`` reaching ``reaches[i]``."""
    raw = copy.deepcopy(yaml.safe_load(SEED.read_text(encoding="utf-8")))
    next(u for u in raw["units"] if u["id"] == "xa-bo-y")["contacts"] = CONTACTS
    kind = next(k for k in raw["schedule"] if k["code"] == "6-thang")
    for i, audience in reaches.items():
        kind["reminders"]["rungs"][i]["reaches"] = audience
    return Plan.model_validate(raw)


def rung_events(plan: Plan) -> dict[str, DeadlineApproaching | DeadlineOverdue]:
    """Per rung id of the plan's 6-month ladder, the event deadlines emits about xa-bo-y: the
    rung's id and audience as services/deadlines/domain.py puts them in."""
    kind = next(k for k in plan.schedule if k.code == "6-thang")
    assert kind.reminders is not None
    events: dict[str, DeadlineApproaching | DeadlineOverdue] = {}
    for rung in kind.reminders.rungs:
        reaches = [a.value for a in rung.reaches]
        if rung.overdue:
            events[rung.id] = DeadlineOverdue(
                **envelope(),
                payload=DeadlineOverduePayload(**REF, rung=rung.id, reaches=reaches),
            )
        else:
            events[rung.id] = DeadlineApproaching(
                **envelope(),
                payload=DeadlineApproachingPayload(
                    **REF, days_before=1, reminder_at=DUE_AT, rung=rung.id, reaches=reaches
                ),
            )
    return events


def recipients(event: DeadlineApproaching | DeadlineOverdue, plan: Plan) -> set[str]:
    return {m.recipient for m in messages_for(event, plan, channels=("email", "sms"))}


OFFICERS = {"canbo@ngochoi.example", "+84900000028", "+84900000030"}
HEAD = {"chutich@ngochoi.example", "+84900000029"}


def test_a_rung_reaches_whom_the_plans_ladder_says_and_changing_it_changes_recipients() -> None:
    default = plan_with(CONTACTS)
    # Rungs 0, 4 and 5 of the ladder are b14, b0 and a1.
    changed = plan_with_ladder({0: ["officer", "unit_head"], 4: ["officer"], 5: ["unit_head"]})

    before, after = rung_events(default), rung_events(changed)

    # The default ladder: b14 the officers, b0 and a1 the head too.
    assert recipients(before["b14"], default) == OFFICERS
    assert recipients(before["b0"], default) == OFFICERS | HEAD
    assert recipients(before["a1"], default) == OFFICERS | HEAD
    # The same code, the plan data changed.
    assert recipients(after["b14"], changed) == OFFICERS | HEAD
    assert recipients(after["b0"], changed) == OFFICERS
    assert recipients(after["a1"], changed) == HEAD


def test_without_the_sms_channel_nobody_gets_an_sms() -> None:
    overdue = DeadlineOverdue(**envelope(), payload=DeadlineOverduePayload(**REF))

    messages = messages_for(overdue, plan_with(CONTACTS))

    assert {m.channel for m in messages} == {"email"}
