"""Poison records on the submission-received topic, then a good record behind them.

Every kind is published with the key of one unit, so all of them and the good report filed
afterwards share one partition: a consumer that stalls on a poison record, or commits past
it without a trace, shows up as a missing dead letter or a missing receipt.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from contracts.topics import SUBMISSION_RECEIVED
from services.common.auth import Role
from services.common.periods import find_period
from tests.conftest import Servers
from tests.faults.conftest import Tally, make_system
from tests.faults.harness import (
    SIX_MONTHS_2027,
    FaultSystem,
    Inbox,
    Mailpit,
    contacts_of,
    count_mail,
    get_json,
    producer,
    read_topic,
    report_body,
    settled,
)
from tests.support.auth import bearer
from tests.support.events import submission_received
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

UNIT = "xa-bo-y"
CONSUMERS = {"deadlines": "submitted", "notify": "receipt", "consolidate": "projection"}
BIG = 3 * 1024 * 1024
"""The topic and our producer accept records up to this size; the poison is 1.5 MiB."""


@pytest.fixture(scope="module")
def system(
    servers: Servers, private_mailpit: Mailpit, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultSystem]:
    """Like the suite's system, but its submission-received topic takes records over 1 MiB
    (created here first, the services then find it)."""
    fault_system = make_system(servers, private_mailpit, tmp_path_factory.mktemp("poison"))

    async def create_topic() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=servers.kafka_bootstrap)
        await admin.start()
        try:
            config = {"max.message.bytes": str(BIG + 1024)}
            await admin.create_topics(
                [NewTopic(fault_system.topic(SUBMISSION_RECEIVED), 3, 1, topic_configs=config)]
            )
        finally:
            await admin.close()

    asyncio.run(create_topic())
    fault_system.start_all()
    yield fault_system
    fault_system.stop()


def poison(system: FaultSystem) -> dict[str, tuple[bytes, list[tuple[str, bytes]], str]]:
    """kind -> (value, headers, the reason every consumer must give)."""
    plan = system.plan
    period = find_period(plan, SIX_MONTHS_2027)
    assert period is not None
    at = dt.datetime(2027, 6, 1, 2, 0, tzinfo=dt.UTC)

    def valid(receipt_no: str) -> dict[str, Any]:
        event = submission_received(period, UNIT, at)
        data = json.loads(event.model_dump_json())
        data["payload"]["receipt_no"] = receipt_no
        return data

    json_header = [("content-type", b"application/json")]
    wrong_version = {**valid("POISON-V2"), "schema_version": 2}
    oversized = {**valid("POISON-BIG"), "padding": "x" * (1536 * 1024)}
    return {
        "non-JSON body, JSON content-type": (b"{not json \xc3", json_header, "invalid_message"),
        "non-UTF-8 header value": (
            json.dumps(valid("POISON-HDR")).encode(),
            [*json_header, ("trace", b"\xff\xfe\x00bad")],
            "invalid_headers",
        ),
        "wrong shape": (json.dumps({"hello": "world"}).encode(), json_header, "invalid_message"),
        "unknown event version (2)": (
            json.dumps(wrong_version).encode(),
            json_header,
            "invalid_message",
        ),
        "value over 1 MiB": (json.dumps(oversized).encode(), json_header, "too_large"),
    }


async def test_every_poison_kind_is_dead_lettered_and_the_partition_moves_on(
    system: FaultSystem, tally: Tally
) -> None:
    topic = system.topic(SUBMISSION_RECEIVED)
    kinds = poison(system)
    sent: dict[str, tuple[int, int]] = {}
    publisher = await producer(system.endpoints.kafka_bootstrap, max_request_size=BIG)
    try:
        for kind, (value, headers, _) in kinds.items():
            meta = await publisher.send_and_wait(topic, value, key=UNIT.encode(), headers=headers)
            sent[kind] = (meta.partition, meta.offset)
    finally:
        await publisher.stop()
    assert len({p for p, _ in sent.values()}) == 1, sent

    # The good record: a report filed for the same unit, published by submissions itself.
    async with httpx.AsyncClient(base_url=system.url("submissions"), timeout=30) as http:
        response = await http.post(
            "/api/v1/submissions",
            json=report_body(system.plan, SIX_MONTHS_2027, UNIT, "m-good"),
            headers=bearer(Role.OFFICER, UNIT),
        )
    assert response.status_code == 201, response.text
    receipt = response.json()
    topic_bytes = receipt["submission_id"].encode()

    async def published() -> bool:
        records = await read_topic(system.endpoints.kafka_bootstrap, topic, max_request=BIG)
        return any(topic_bytes in r.value for r in records)

    await eventually(published, what="the good record on the topic")
    await settled(system, *CONSUMERS)

    letters: dict[str, list[dict[str, Any]]] = {
        service: await get_json(system.url(service), "/api/v1/dead-letters?limit=1000")
        for service in CONSUMERS
    }
    inbox = await Inbox(system.endpoints.mailpit_api).receipts(system.sender)
    failures = []
    for kind, (_, _, reason) in kinds.items():
        partition, offset = sent[kind]
        lost = 0
        for service in CONSUMERS:
            found = [
                d
                for d in letters[service]
                if (d["topic"], d["partition"], d["offset"]) == (topic, partition, offset)
            ]
            if [d["reason"] for d in found] != [reason]:
                lost += 1
                failures.append(f"{kind}: {service} letters {[d['reason'] for d in found]}")
        # An effect of a poison record (a receipt for it) is one effect too many.
        effects = sum(len(v) for (no, _), v in inbox.items() if no.startswith("POISON"))
        tally(f"poison: {kind}", len(CONSUMERS), lost, effects, f"dead letter '{reason}'")

    # The good record behind them, on the same partition, was handled by every consumer.
    records = await read_topic(system.endpoints.kafka_bootstrap, topic, max_request=BIG)
    good = [r for r in records if receipt["submission_id"].encode() in r.value]
    assert [r.partition for r in good] == [sent["wrong shape"][0]], "same partition"
    pairs = [(receipt["receipt_no"], a) for a in contacts_of(system.plan, UNIT)]

    async def mailed() -> bool:
        found = await Inbox(system.endpoints.mailpit_api).receipts(system.sender)
        return all(found.get(p) for p in pairs)

    await eventually(mailed, timeout=30, what="the good record's receipt")
    mail = count_mail(pairs, await Inbox(system.endpoints.mailpit_api).receipts(system.sender))
    preview = await get_json(
        system.url("consolidate"), f"/api/v1/periods/{SIX_MONTHS_2027}/preview"
    )
    unit = next(u for u in preview["units"] if u["unit_id"] == UNIT)
    projected = int(unit.get("submission_id") == receipt["submission_id"])
    tally(
        "poison: good record after them, same partition",
        1 + len(pairs),
        mail.lost + (1 - projected),
        mail.duplicated + max(preview["received"] - 1, 0),
        "receipt mail and projection",
    )
    assert not failures, failures
    assert (mail.lost, mail.duplicated, projected, preview["received"]) == (0, 0, 1, 1)
