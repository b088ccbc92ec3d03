"""Two replicas of notify and of consolidate; one of each stops in the middle of a burst.

The survivors take over the stopped replicas' partitions (a rebalance while records are in
flight): every receipt is mailed exactly once and every report projected.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.common.auth import Role
from tests.conftest import Servers
from tests.faults.conftest import Tally, make_system
from tests.faults.harness import (
    SIX_MONTHS_2027,
    FaultSystem,
    Inbox,
    Mailpit,
    burst,
    consolidation_errors,
    count_mail,
    duplicates,
    expected_receipt_pairs,
    get_json,
    settled,
)
from tests.support.auth import bearer
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

BURST = 150


@pytest.fixture(scope="module")
def system(
    servers: Servers, private_mailpit: Mailpit, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultSystem]:
    fault_system = make_system(servers, private_mailpit, tmp_path_factory.mktemp("replicas"))
    fault_system.start_all()
    for replica in ("notify-b", "consolidate-b"):
        fault_system.launch(replica, service=replica.removesuffix("-b"))
    for replica in ("notify-b", "consolidate-b"):
        fault_system.wait_ready(replica)
    yield fault_system
    fault_system.stop()


async def stop_replicas(system: FaultSystem) -> None:
    await asyncio.gather(
        asyncio.to_thread(system.signal, "notify-b", signal.SIGTERM),
        asyncio.to_thread(system.signal, "consolidate-b", signal.SIGTERM),
    )


async def projected(system: FaultSystem) -> list[str]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(system.endpoints.mongo_uri)
    try:
        db = client[system.database("consolidate")]
        docs = await db[f"submissions.{SIX_MONTHS_2027}"].find({}, {"_id": 1}).to_list()
        return [d["_id"] for d in docs]
    finally:
        await client.close()


async def test_a_replica_stopped_mid_burst_loses_and_repeats_nothing(
    system: FaultSystem, tally: Tally
) -> None:
    async def both_replicas_work() -> bool:
        # Both members of each group have partitions before the burst starts.
        ledger = await get_json(system.url("notify-b"), "/api/v1/notifications")
        return isinstance(ledger, list)

    await eventually(both_replicas_work, what="replicas to answer")
    filings = await burst(system, BURST, on_progress={BURST // 2: lambda: stop_replicas(system)})
    ok = [f for f in filings if f.status == 201]
    pairs = expected_receipt_pairs(system.plan, ok)
    inbox = Inbox(system.endpoints.mailpit_api)

    async def all_mailed() -> bool:
        found = await inbox.receipts(system.sender)
        return all(found.get(p) for p in pairs)

    with contextlib.suppress(AssertionError):  # what has not arrived is counted as lost
        await eventually(all_mailed, timeout=180, interval=1.0, what="every receipt")
    await settled(system, "notify", "consolidate")
    mail = count_mail(pairs, await inbox.receipts(system.sender))
    tally(
        "2 replicas, one stopped mid-burst: notify mails",
        mail.expected,
        mail.lost,
        mail.duplicated,
    )
    ids = {f.receipt["submission_id"] for f in ok if f.receipt}
    rows = await projected(system)
    async with httpx.AsyncClient(
        base_url=system.url("consolidate"), timeout=30, headers=bearer(Role.ADMIN)
    ) as http:
        preview = (await http.get(f"/api/v1/periods/{SIX_MONTHS_2027}/preview")).json()
    lost_p, dup_p, details = consolidation_errors(preview, Counter(f.unit_id for f in ok))
    lost = len(ids - set(rows)) + lost_p
    dup = duplicates(rows) + len(set(rows) - ids) + dup_p
    tally("2 replicas, one stopped mid-burst: consolidate", len(ids), lost, dup)
    assert len(ok) == BURST, [f.error for f in filings if f.status != 201][:3]
    assert (mail.lost, mail.duplicated) == (0, 0), (mail.missing[:10], mail.repeated)
    assert (lost, dup) == (0, 0), (sorted(ids - set(rows))[:10], details)
