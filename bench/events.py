"""SubmissionReceived events as the submissions service publishes them, built in-process."""

from __future__ import annotations

import datetime as dt
import uuid

from aiokafka import AIOKafkaProducer

from bench.system import OPEN_PERIOD, SEED_PLAN
from contracts.events import SubmissionReceived
from contracts.topics import SUBMISSION_RECEIVED
from services.common.periods import find_period
from services.common.reference import load_plan

RESULTS = (
    "Tổ chức các buổi quán triệt, tuyên truyền Nghị quyết 35-NQ/TW cho cán bộ, đảng viên và nhân "
    "dân; đăng tải tin, bài trên trang thông tin điện tử của đơn vị."
)


def submission_events(n: int, period_id: str = OPEN_PERIOD) -> list[SubmissionReceived]:
    """``n`` reports spread over the plan's units, each with that unit's real tasks."""
    plan = load_plan(SEED_PLAN)
    period = find_period(plan, period_id)
    assert period is not None, period_id
    units = plan.reporting_units()
    received = period.opens_at + dt.timedelta(days=3)
    events = []
    for i in range(n):
        unit = units[i % len(units)]
        at = received + dt.timedelta(seconds=i)
        tasks = [
            {
                "task_id": task.id,
                "status": "completed",
                "results": RESULTS,
                "indicators": [{"code": c, "value": 4} for c in task.indicator_codes],
            }
            for task in plan.tasks_of(unit.id)
        ]
        events.append(
            SubmissionReceived.model_validate(
                {
                    "occurred_at": at,
                    "producer": "submissions",
                    "correlation_id": uuid.uuid4(),
                    "payload": {
                        "submission_id": str(uuid.uuid4()),
                        "receipt_no": f"TN-2027-{i + 1:06d}",
                        "plan_id": plan.id,
                        "period_id": period.id,
                        "unit_id": unit.id,
                        "revision": i // len(units) + 1,
                        "received_at": at,
                        "due_at": period.due_at,
                        "on_time": True,
                        "submitted_by": {"name": "Nguyễn Thị Hà"},
                        "tasks": tasks,
                    },
                }
            )
        )
    return events


def record(event: SubmissionReceived) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) exactly as ``KafkaPublisher`` sends the event."""
    key = str(getattr(event.payload, SUBMISSION_RECEIVED.key_field)).encode()
    headers = [
        ("event_id", str(event.event_id).encode()),
        ("event_type", event.event_type.encode()),
        ("content-type", b"application/json"),
    ]
    return key, event.model_dump_json().encode(), headers


async def send_all(
    producer: AIOKafkaProducer, topic: str, events: list[SubmissionReceived]
) -> None:
    """Queue every record, then wait for all acknowledgements (the library's own batching)."""
    pending = []
    for event in events:
        key, value, headers = record(event)
        pending.append(await producer.send(topic, value, key=key, headers=headers))
    for future in pending:
        await future
