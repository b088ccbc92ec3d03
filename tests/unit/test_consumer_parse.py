"""Consuming raw records: which are events (``parse``), and what ``Consumption.process`` does
with each kind of failure. No broker: records are built as aiokafka hands them over."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry
from pymongo.errors import AutoReconnect, ConnectionFailure

from contracts.envelope import Event
from contracts.events import SubmissionReceived
from contracts.topics import SUBMISSION_RECEIVED
from services.common.clock import FixedClock
from services.common.consumer import (
    MAX_EVENT_BYTES,
    Consumption,
    Outcome,
    PermanentError,
    Rejected,
    RetryPolicy,
    parse,
)
from services.common.kafka import Names
from services.common.metrics import CommonMetrics
from services.common.periods import find_period
from services.common.runtime import StoredRecord
from tests.support.events import submission_received
from tests.support.fakes import MemoryDeadLetters
from tests.support.plans import make_plan, task, unit

pytestmark = pytest.mark.unit

PLAN = make_plan(
    plan_id="kh-thu",
    consolidating_unit_id="xa-a",
    units=[unit("xa-a", "UBND xã A", "commune")],
    tasks=[task("nv-1", "I", "Nhiệm vụ", ["xa-a"])],
)
PERIOD = find_period(PLAN, "kh-thu.2027.6-thang")
assert PERIOD is not None
AT = dt.datetime(2027, 6, 1, 3, 0, tzinfo=dt.UTC)
CONSUMER = "projection"


def an_event() -> SubmissionReceived:
    assert PERIOD is not None
    return submission_received(PERIOD, "xa-a", AT)


def record(
    value: bytes | None,
    *,
    headers: list[tuple[str, Any]] | None = None,
    offset: int = 7,
) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord(
        topic=f"unit.{SUBMISSION_RECEIVED.name}",
        partition=2,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=b"xa-a",
        value=value,
        checksum=None,
        serialized_key_size=4,
        serialized_value_size=len(value or b""),
        headers=headers if headers is not None else [("event_type", b"submission.received")],
    )


def event_record(event: Event, **kwargs: Any) -> ConsumerRecord[bytes, bytes]:
    return record(event.model_dump_json().encode(), **kwargs)


def rejection(raw: ConsumerRecord[bytes, bytes]) -> Rejected:
    with pytest.raises(Rejected) as caught:
        parse(SUBMISSION_RECEIVED, raw)
    return caught.value


# --- parse ----------------------------------------------------------------------------------


def test_a_good_record_is_its_event() -> None:
    event = an_event()

    parsed = parse(SUBMISSION_RECEIVED, event_record(event))

    assert parsed == event
    assert isinstance(parsed, SubmissionReceived)


def test_unknown_fields_are_ignored_as_a_tolerant_reader_does() -> None:
    event = an_event()
    body = json.loads(event.model_dump_json())
    body["added_by_a_newer_producer"] = True
    body["payload"]["also_new"] = [1, 2]

    assert parse(SUBMISSION_RECEIVED, record(json.dumps(body).encode())) == event


def test_a_header_that_is_not_utf8_is_invalid_headers() -> None:
    raw = event_record(an_event(), headers=[("event_type", b"\xff\xfe submission")])

    error = rejection(raw)

    assert error.reason == "invalid_headers"
    assert "event_type" in str(error)


def test_a_body_over_the_limit_is_too_large() -> None:
    error = rejection(record(b" " * (MAX_EVENT_BYTES + 1)))

    assert error.reason == "too_large"
    assert str(MAX_EVENT_BYTES + 1) in str(error)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"not json at all", id="not-json"),
        pytest.param(b"\xff\xfe{}", id="not-utf8"),
        pytest.param(b"", id="empty"),
        pytest.param(None, id="tombstone"),
        pytest.param(b'{"hello": "world"}', id="wrong-shape"),
        pytest.param(b"[1, 2, 3]", id="not-an-object"),
    ],
)
def test_a_body_that_is_not_the_contract_is_invalid_message(body: bytes | None) -> None:
    assert rejection(record(body)).reason == "invalid_message"


def test_a_later_schema_version_is_invalid_message_on_a_v1_topic() -> None:
    body = json.loads(an_event().model_dump_json())
    body["schema_version"] = 2

    assert rejection(record(json.dumps(body).encode())).reason == "invalid_message"


# --- Consumption.process --------------------------------------------------------------------


class FlakyDeadLetters(MemoryDeadLetters):
    """MongoDB is away for the first ``failures`` writes."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def put(self, **letter: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise AutoReconnect("connection refused")
        await super().put(**letter)


class Handler:
    """Fails with what ``fail`` says on each call; records the events it handled."""

    def __init__(self, fail: Callable[[int], BaseException | None] = lambda _: None) -> None:
        self.fail = fail
        self.calls = 0
        self.handled: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.calls += 1
        error = self.fail(self.calls)
        if error is not None:
            raise error
        self.handled.append(event)


class Consumer:
    def __init__(self, dead_letters: MemoryDeadLetters | None = None, **policy: Any) -> None:
        self.registry = CollectorRegistry()
        self.dead_letters = dead_letters or MemoryDeadLetters()
        self.consumption = Consumption(
            "unit",
            Names("unit"),
            self.dead_letters,
            CommonMetrics(self.registry, "unit"),
            FixedClock(AT),
            RetryPolicy(**{"max_attempts": 3, "first_delay": 0.001, "max_delay": 0.002, **policy}),
        )

    def process(self, handler: Handler, raw: Any) -> Awaitable[Outcome]:
        return self.consumption.process(SUBMISSION_RECEIVED, CONSUMER, handler, raw)

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, {"service": "unit", **labels})
        return value or 0.0

    def only_letter(self) -> dict[str, Any]:
        [letter] = self.dead_letters.letters.values()
        return letter


async def test_a_good_record_is_handled() -> None:
    c = Consumer()
    event = an_event()
    handler = Handler()

    assert await c.process(handler, event_record(event)) is Outcome.HANDLED

    assert handler.handled == [event]
    assert c.dead_letters.letters == {}


async def test_a_record_that_is_no_event_is_dead_lettered_with_its_raw_bytes() -> None:
    c = Consumer()
    handler = Handler()
    raw = record(b"\x00garbage", headers=[("event_type", b"\xff")])

    assert await c.process(handler, raw) is Outcome.DEAD_LETTERED

    letter = c.only_letter()
    assert handler.calls == 0
    assert (letter["reason"], letter["attempts"]) == ("invalid_headers", 1)
    assert (letter["topic"], letter["partition"], letter["offset"]) == (raw.topic, 2, 7)
    assert (letter["key"], letter["value"]) == (b"xa-a", b"\x00garbage")
    assert letter["headers"] == [("event_type", b"\xff")]
    assert c.sample("baocao_dead_letters_total", consumer=CONSUMER) == 1


async def test_a_permanent_error_is_dead_lettered_at_once() -> None:
    c = Consumer()
    handler = Handler(lambda _: PermanentError("plan 'kh-khac' is not loaded here"))

    assert await c.process(handler, event_record(an_event())) is Outcome.DEAD_LETTERED

    letter = c.only_letter()
    assert handler.calls == 1
    assert (letter["reason"], letter["attempts"]) == ("rejected", 1)
    assert letter["error"] == "PermanentError: plan 'kh-khac' is not loaded here"


async def test_an_error_that_waiting_cannot_fix_is_retried_max_attempts_then_dead_lettered() -> (
    None
):
    c = Consumer(max_attempts=3)
    handler = Handler(lambda _: FileNotFoundError(2, "No such file", "templates/receipt.txt"))

    assert await c.process(handler, event_record(an_event())) is Outcome.DEAD_LETTERED

    letter = c.only_letter()
    assert handler.calls == 3
    assert (letter["reason"], letter["attempts"]) == ("handler_failed", 3)
    assert letter["error"].startswith("FileNotFoundError")
    assert c.sample("baocao_handler_retries_total", consumer=CONSUMER) == 2


async def test_transient_errors_do_not_count_toward_max_attempts() -> None:
    c = Consumer(max_attempts=2, transient_budget=60.0)
    handler = Handler(lambda call: ConnectionFailure("MongoDB away") if call <= 5 else None)

    assert await c.process(handler, event_record(an_event())) is Outcome.HANDLED

    assert handler.calls == 6
    assert len(handler.handled) == 1
    assert c.dead_letters.letters == {}


async def test_a_transient_error_past_the_budget_is_handed_back_not_dead_lettered() -> None:
    budget = 0.05
    c = Consumer(max_attempts=1, transient_budget=budget)
    handler = Handler(lambda _: AutoReconnect("MongoDB fail-over"))
    loop = asyncio.get_running_loop()
    started = loop.time()

    assert await c.process(handler, event_record(an_event())) is Outcome.AGAIN

    assert loop.time() - started >= budget
    assert handler.calls >= 1
    assert c.dead_letters.letters == {}
    assert c.sample("baocao_dead_letters_total", consumer=CONSUMER) == 0
    assert c.sample("baocao_handler_retries_total", consumer=CONSUMER) == handler.calls


async def test_a_dead_letter_is_stored_even_when_its_store_fails_at_first() -> None:
    c = Consumer(FlakyDeadLetters(failures=2))
    handler = Handler(lambda _: PermanentError("never"))

    assert await c.process(handler, event_record(an_event())) is Outcome.DEAD_LETTERED

    assert c.only_letter()["reason"] == "rejected"
    assert c.sample("baocao_dead_letter_write_retries_total") == 2
    assert c.sample("baocao_dead_letters_total", consumer=CONSUMER) == 1


async def test_a_dead_letter_replayed_after_the_fix_is_handled() -> None:
    c = Consumer(max_attempts=1)
    event = an_event()
    await c.process(Handler(lambda _: ValueError("bug")), event_record(event))
    letter = c.only_letter()
    stored = StoredRecord(
        topic=letter["topic"],
        partition=letter["partition"],
        offset=letter["offset"],
        key=letter["key"],
        value=letter["value"],
        headers=letter["headers"],
    )
    fixed = Handler()

    assert await c.process(fixed, stored) is Outcome.HANDLED

    assert fixed.handled == [event]
