"""A JSON template writes what its model would: for plain values by substitution, for any other
value through the model."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from pydantic import ValidationError

from contracts.events import DeadlineApproaching, PendingUnit
from contracts.plan.model import Unit
from services.common.outbox import SerializedEvent
from services.common.templates import JsonTemplate, is_plain

pytestmark = pytest.mark.unit

VN = dt.timezone(dt.timedelta(hours=7))
AT = dt.datetime(2027, 6, 8, 8, tzinfo=VN)


def approaching(event_id: str, unit_id: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "occurred_at": AT,
        "producer": "deadlines",
        "correlation_id": uuid.UUID(int=7),
        "payload": {
            "plan_id": "kh-nq35",
            "period_id": "kh-nq35.2027.6-thang",
            "report_kind": "6-thang",
            "year": 2027,
            "due_at": AT + dt.timedelta(days=7),
            "unit_id": unit_id,
            "days_before": 7,
            "reminder_at": AT,
            "rung": "b5",
            "working_days_before": 5,
            "reaches": ["officer"],
        },
    }


RUNG = JsonTemplate(
    DeadlineApproaching, approaching("", ""), [("event_id",), ("payload", "unit_id")]
)


@pytest.mark.parametrize(
    "unit_id", ["xa-bo-y", "tt-plei-kan", "a" * 64, "ubnd-xa-dak-kan-2", "0x", "x1"]
)
def test_filled_with_plain_values_it_is_the_models_json(unit_id: str) -> None:
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, unit_id))
    expected = DeadlineApproaching.model_validate(approaching(event_id, unit_id)).model_dump_json()
    assert RUNG.fill(event_id, unit_id) == expected
    assert RUNG.render(event_id, unit_id) == expected


@pytest.mark.parametrize(
    "unit_id", ['say "hi"', "Ủy ban xã Bờ Y", "back\\slash", "tab\there", "A-CAPS", "x" * 100]
)
def test_other_values_go_through_the_model(unit_id: str) -> None:
    event_id = str(uuid.uuid4())
    expected = DeadlineApproaching.model_validate(approaching(event_id, unit_id)).model_dump_json()
    assert not is_plain(unit_id)
    assert RUNG.render(event_id, unit_id) == expected


def test_a_value_the_model_refuses_is_refused() -> None:
    with pytest.raises(ValidationError):
        RUNG.render("not-a-uuid-but-not-plain-either!", "xa-bo-y")
    with pytest.raises(ValidationError):
        RUNG.render(str(uuid.uuid4()), "x" * 200)  # an Id is at most 128 characters


def test_every_plan_unit_id_is_plain() -> None:
    # ``fill`` writes a plan's unit ids unchecked: the plan's Slug type must keep them plain.
    for unit_id in ["ab", "a" * 64, "0-9", "xa-" + "9" * 61]:
        assert is_plain(Unit.model_validate({"id": unit_id, "name": "x", "kind": "commune"}).id)
    for bad in ["-ab", "ab-", "AB", "a" * 65, "a_b", "a"]:
        with pytest.raises(ValidationError):
            Unit.model_validate({"id": bad, "name": "x", "kind": "commune"})


def test_a_template_with_one_hole_fills_many() -> None:
    due = AT + dt.timedelta(days=7)
    data = {"unit_id": "", "due_at": due, "overdue": True, "returned": False}
    template = JsonTemplate(PendingUnit, data, [("unit_id",)])
    units = ["xa-1", "xa-2", "tt-3"]
    assert template.fill_each(units) == [
        PendingUnit.model_validate({**data, "unit_id": u}).model_dump_json() for u in units
    ]


def test_a_hole_must_be_a_string_field_and_holes_come_in_order() -> None:
    data = approaching(str(uuid.uuid4()), "xa-bo-y")
    with pytest.raises(ValidationError, match="valid integer"):
        JsonTemplate(DeadlineApproaching, data, [("payload", "days_before")])
    with pytest.raises(ValueError, match="in the order"):
        JsonTemplate(DeadlineApproaching, data, [("payload", "unit_id"), ("event_id",)])


def test_a_serialized_event_is_what_the_model_says_and_reads_back() -> None:
    event = DeadlineApproaching.model_validate(approaching(str(uuid.uuid4()), "xa-bo-y"))
    serialized = SerializedEvent.of(event)
    assert serialized.event_id == str(event.event_id)
    assert serialized.key == "xa-bo-y"  # the topic's key field
    assert serialized.event_type == "deadline.approaching"
    assert serialized.occurred_at == event.occurred_at
    assert serialized.event() == event
