"""Two notify owners racing over the same ledger entries on the real MongoDB-wire server
(FerretDB applies a conditional update without isolation, which is why a lease is taken by an
insert): each claim, each take-over after a lease ran out and each retry after a failed
attempt goes to exactly one owner, so every entry is sent by one owner per attempt."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter

import pytest

from services.notify.store import SENT, MongoLedger
from tests.conftest import Servers
from tests.integration.test_notify_ledger_list import LEASE, NOW, outgoing
from tests.support.mongo import throwaway_database

pytestmark = pytest.mark.integration

ENTRIES = 12


async def race(ledgers: dict[str, MongoLedger], now: dt.datetime) -> dict[str, str]:
    """Both owners read what is due and try to take every entry at once; who took what."""
    taken: dict[str, str] = {}

    async def owner(name: str) -> None:
        ledger = ledgers[name]
        for entry in await ledger.due(now, 100):
            if await ledger.take_over(entry, name, now, LEASE):
                assert entry["_id"] not in taken, f"{entry['_id']} taken twice"
                taken[entry["_id"]] = name

    await asyncio.gather(*(owner(name) for name in ledgers))
    return taken


async def test_two_owners_never_hold_the_same_entry(servers: Servers, namespace: str) -> None:
    async with throwaway_database(servers.mongo_uri, f"{namespace}_notify_race") as db:
        ledgers = {"a:1": MongoLedger(db), "b:1": MongoLedger(db)}
        messages = [
            outgoing(f"xa-{n:02d}", "kh-nq35-ngoc-hoi.2027.6-thang") for n in range(ENTRIES)
        ]
        sends: Counter[str] = Counter()

        # 1. The same event handled by both at once (a redelivery): one claim each.
        claims = await asyncio.gather(
            *(ledgers[o].claim(m, o, NOW, LEASE) for m in messages for o in ledgers)
        )
        assert [claims[i] + claims[i + 1] for i in range(0, len(claims), 2)] == [1] * ENTRIES

        # 2. Both crashed before sending; nothing is due while the claims' leases run.
        assert await race(ledgers, NOW + LEASE / 2) == {}
        after_lease = NOW + LEASE + dt.timedelta(seconds=1)
        taken = await race(ledgers, after_lease)
        assert sorted(taken) == sorted(m.notification_id for m in messages)
        # The holders try: half fail for now and are due again in a minute, half are sent.
        retry_at = after_lease + dt.timedelta(minutes=1)
        for i, message in enumerate(messages):
            nid = message.notification_id
            sends[nid] += 1
            if i % 2:
                await ledgers[taken[nid]].attempted(nid, 1, "421 4.7.0 try later", retry_at)
            else:
                await ledgers[taken[nid]].finish(message, SENT, 1, f"e-{i}", after_lease)

        # 3. Held by their new owners until the retry: nothing is due before it.
        assert await race(ledgers, retry_at - dt.timedelta(seconds=1)) == {}
        retried = await race(ledgers, retry_at)
        assert sorted(retried) == sorted(m.notification_id for m in messages[1::2])
        for i, message in enumerate(messages[1::2]):
            sends[message.notification_id] += 1
            await ledgers[retried[message.notification_id]].finish(
                message, SENT, 2, f"r-{i}", retry_at
            )

        assert await race(ledgers, retry_at + LEASE * 10) == {}
        listed = await ledgers["a:1"].list(100)

    assert [sends[m.notification_id] for m in messages] == [1, 2] * (ENTRIES // 2)
    assert sorted(d["_id"] for d in listed) == sorted(m.notification_id for m in messages)
    assert {d["status"] for d in listed} == {SENT}
