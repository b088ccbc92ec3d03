"""An Idempotency-Key on ``POST /api/v1/submissions`` against the real FerretDB and Kafka (the
app in-process with its lifespan and outbox relay, under a fresh namespace): a retry gets the
first receipt and files nothing more, another body under the same key is refused, and the
report is announced on Kafka once."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from contracts.topics import SUBMISSION_RECEIVED
from services.common.auth import Role
from services.common.clock import FixedClock
from services.common.kafka import Names
from services.submissions.app import build_app
from services.submissions.config import SubmissionsSettings
from tests.conftest import Servers
from tests.support.auth import bearer
from tests.support.in_process import serving
from tests.support.kafka import read_all
from tests.support.submissions import SEED, SEED_OPEN_AT, SEED_PERIOD, report

pytestmark = pytest.mark.integration

UNIT, OTHER = "xa-bo-y", "xa-dak-ang"


@dataclass
class Intake:
    http: httpx.AsyncClient
    clock: FixedClock
    names: Names
    bootstrap: str

    async def file(self, results: str, key: str, unit_id: str = UNIT) -> httpx.Response:
        return await self.http.post(
            "/api/v1/submissions",
            json=report(results, unit_id=unit_id).model_dump(mode="json"),
            headers={**bearer(Role.OFFICER, unit_id), "Idempotency-Key": key},
        )


@pytest.fixture
async def intake(servers: Servers, namespace: str) -> AsyncIterator[Intake]:
    settings = SubmissionsSettings(
        namespace=namespace,
        kafka_bootstrap=servers.kafka_bootstrap,
        mongo_uri=servers.mongo_uri,
        plans=str(SEED),
    )
    clock = FixedClock(SEED_OPEN_AT)
    app = build_app(settings, clock=clock)
    async with serving(app) as http:
        yield Intake(http, clock, Names(namespace), servers.kafka_bootstrap)


async def test_a_repeated_key_gets_the_first_receipt_and_one_event(intake: Intake) -> None:
    first = await intake.file("Tổ chức 4 buổi quán triệt.", "lan-gui-1")
    intake.clock.advance(dt.timedelta(minutes=3))  # the retry comes later, over a bad line
    again = await intake.file("Tổ chức 4 buổi quán triệt.", "lan-gui-1")
    reused = await intake.file("Tổ chức 5 buổi quán triệt.", "lan-gui-1")
    # The key is the unit's own: another unit may happen to send the same one.
    theirs = await intake.file("Tổ chức 2 buổi.", "lan-gui-1", unit_id=OTHER)
    versions = await intake.http.get(
        f"/api/v1/periods/{SEED_PERIOD}/units/{UNIT}/versions", headers=bearer(Role.OFFICER, UNIT)
    )

    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    receipt = first.json()
    kept = {k: v for k, v in again.json().items() if k not in {"server_time", "message"}}
    assert kept == {k: v for k, v in receipt.items() if k not in {"server_time", "message"}}
    assert again.headers["location"] == first.headers["location"]
    assert (reused.status_code, reused.json()["code"]) == (422, "idempotency_key_reused")
    assert theirs.status_code == 201, theirs.text
    assert [v["revision"] for v in versions.json()["versions"]] == [1]

    # Wait for the other unit's event too: the topic is keyed by unit, so when both are read a
    # second announcement of the first report would have had time to show up alongside.
    events = await read_all(
        intake.bootstrap, intake.names.topic(SUBMISSION_RECEIVED), until=2, settle=2.0
    )
    ours = [e for e in events if e["payload"]["unit_id"] == UNIT]
    assert len(ours) == 1, ours
    assert ours[0]["payload"]["submission_id"] == receipt["submission_id"]
    assert ours[0]["payload"]["revision"] == 1
