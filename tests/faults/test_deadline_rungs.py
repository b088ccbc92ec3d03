"""The reminder ladder on the real stack: each rung once through a kill, two replicas and ten
days of downtime (issue 11, "Exactly once, durably" and "Catch-up after downtime").

One system, deadlines alone, on a small plan: 40 communes owe the six-month report due
before 15 June 2027 (due day Monday 14 June), on a ladder of 3, 2, 1 and 0 working days
before the due day and 1 after it, at 08:00, then weekly until the lock on 15 July:

    b3 9/6   b2 10/6   b1 11/6   b0 14/6   a1 15/6   a1+7d 22/6 ... a1+28d 13/7

The tests run in this order, each on the clock the one before left:

1. deadlines starts at b3 and is killed (SIGKILL) once its scan has stored a few rungs: the
   scan stores all 40 before it wakes the relay, so at the kill rungs are stored and not on
   Kafka (the test checks this from the store and the topics, not by timing alone); the
   restarted process publishes each rung of b3 once;
2. two replicas start shortly before b2 and are both asked to scan at once when their clocks
   have passed it: each rung of b2 once;
3. both stop; deadlines comes back ten days later (20/6): a1 is sent, b1 and b0 are recorded
   as skipped (schedule endpoint and metric), none of them reaches Kafka.

Every rung event is counted by what it announces (unit, rung) on the deadline topics, so a
rung decided twice under two event ids counts as twice, as does one event published twice;
except after the kill -9 of scenario 1, where a record in flight at the kill may be resent
under its event id (the outbox's at-least-once), which is counted and reported apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import signal
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from contracts.topics import (
    DEADLINE_APPROACHING,
    DEADLINE_OVERDUE,
    DEADLINE_SUMMARY,
    PERIOD_OPENED,
)
from services.common.auth import Role
from tests.conftest import Servers
from tests.faults.conftest import Tally, make_system
from tests.faults.harness import FaultSystem, Mailpit, get_json, read_topics, scrape, settled
from tests.support.auth import bearer
from tests.support.plans import make_plan, six_months, task, unit
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

UNITS = [f"xa-{n:02d}" for n in range(1, 41)]
PLAN = make_plan(
    plan_id="kh-bac-nhac",
    consolidating_unit_id="van-phong",
    effective_from="2026-06-01",
    units=[
        unit("van-phong", "Văn phòng HĐND và UBND", "specialised_office", reports=False),
        *(unit(u, f"UBND xã {u[3:]}", "commune") for u in UNITS),
    ],
    tasks=[task("nv-1", "II.1", "Nhiệm vụ", UNITS, text="Làm việc")],
    schedule=[
        six_months(
            closes_days_after_due=30,
            reminders={
                "send_at": "08:00",
                "overdue_every_days": 7,
                "rungs": [
                    *({"working_days_before_due": n} for n in (3, 2, 1, 0)),
                    {"working_days_after_due": 1},
                ],
            },
        )
    ],
)
PERIOD = f"{PLAN.id}.2027.6-thang"
B3 = dt.datetime.fromisoformat("2027-06-09T08:00:00+07:00")
B2 = dt.datetime.fromisoformat("2027-06-10T08:00:00+07:00")
DOWNTIME = dt.timedelta(days=10)
LATER = ["a1+7d", "a1+14d", "a1+21d", "a1+28d"]
"""The rungs still to come after the downtime (22/6 to 13/7; the lock is 15/7 00:00)."""
KILL_AFTER = 3
"""Rungs the first scan has stored when deadlines is killed (of 40, stored before any is
relayed: the relay is woken at the end of the scan)."""
SETTLE_AFTER = dt.timedelta(seconds=31)
"""An intent left by a process killed mid-decision waits 30 s (the relay's ``settle_after``)
before it is published or dropped; the restart's clock starts that much later, so the test
does not wait it out in wall time."""
LEAD = 20.0
"""Seconds before b2 the replicas' clocks start: time for both to start scanning (the second
joins the consumer groups after a rebalance: 10-16 s on this 2-core machine under load)."""
TOPICS = (PERIOD_OPENED, DEADLINE_APPROACHING, DEADLINE_OVERDUE, DEADLINE_SUMMARY)

state: dict[str, float] = {}
"""What an earlier step left for a later one: when the replicas' clocks started."""

Label = tuple[str, ...]
"""What an event announces: ('opened',), ('summary', rung) or ('rung', unit, rung)."""


def rungs_of(*rungs: str) -> set[Label]:
    return {("rung", u, r) for u in UNITS for r in rungs} | {("summary", r) for r in rungs}


@pytest.fixture(scope="module")
def system(
    servers: Servers, private_mailpit: Mailpit, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultSystem]:
    folder = tmp_path_factory.mktemp("rungs")
    plan_file = folder / "plan.json"
    plan_file.write_text(PLAN.model_dump_json(), encoding="utf-8")
    fault_system = make_system(
        servers, private_mailpit, folder, clock_start=B3.isoformat(), plans=[plan_file]
    )
    yield fault_system
    fault_system.stop()


async def labels(system: FaultSystem) -> Counter[Label]:
    """Every record on the deadline topics so far, by what it announces."""
    return Counter({label: len(ids) for label, ids in (await _records(system)).items()})


async def events(system: FaultSystem) -> Counter[Label]:
    """The same by event: a second record of one event id is one event sent again (a relay
    killed between Kafka's acknowledgement and its mark resends it, which no outbox can
    avoid, and every consumer drops the copy), not a rung decided twice."""
    return Counter({label: len(set(ids)) for label, ids in (await _records(system)).items()})


async def _records(system: FaultSystem) -> dict[Label, list[str]]:
    """The event id of each record on the deadline topics, by what it announces."""
    found: dict[Label, list[str]] = {}
    names = [system.topic(t) for t in TOPICS]
    for record in await read_topics(system.endpoints.kafka_bootstrap, names):
        event = json.loads(record.value)
        payload = event["payload"]
        if payload["period_id"] != PERIOD:
            continue
        if event["event_type"] == "period.opened":
            label: Label = ("opened",)
        elif event["event_type"] == "deadline.summary":
            label = ("summary", payload["rung"])
        else:
            label = ("rung", payload["unit_id"], payload["rung"])
        found.setdefault(label, []).append(event["event_id"])
    return found


async def published(system: FaultSystem, expected: set[Label]) -> Counter[Label]:
    """The deadline topics once every label of ``expected`` is there (or at the deadline)."""
    last: Counter[Label] = Counter()

    async def all_there() -> bool:
        nonlocal last
        last = await labels(system)
        return expected <= set(last)

    with contextlib.suppress(AssertionError):  # what is missing is counted as lost
        await eventually(all_there, timeout=30, interval=0.5, what="every rung on Kafka")
    return last


def lost_and_repeated(found: Counter[Label], expected: set[Label]) -> tuple[int, int]:
    return len(expected - set(found)), sum(found[label] - 1 for label in expected if found[label])


async def decided_twice(system: FaultSystem) -> int:
    """Rungs on the topics under more than one event id: decided twice, not published twice
    (a second copy of one event id is a relay's resend)."""
    ids: dict[Label, set[str]] = {}
    names = [system.topic(t) for t in (DEADLINE_APPROACHING, DEADLINE_OVERDUE)]
    for record in await read_topics(system.endpoints.kafka_bootstrap, names):
        event = json.loads(record.value)
        label = ("rung", event["payload"]["unit_id"], event["payload"]["rung"])
        ids.setdefault(label, set()).add(event["event_id"])
    return sum(len(found) - 1 for found in ids.values())


async def store(
    system: FaultSystem, client: AsyncMongoClient[dict[str, Any]]
) -> tuple[list[dict[str, Any]], set[str]]:
    """The deadlines store as it is: rung decisions, and intents without a ready copy (a
    process killed between deciding a rung and committing its event)."""
    db = client[system.database("deadlines")]
    decisions = await db["emissions"].find({"unit_id": {"$ne": None}}).to_list()
    intents = {d["_id"] for d in await db["outbox"].find({"state": "intent"}).to_list()}
    ready = {d["_id"] for d in await db["outbox_ready"].find({}, {"_id": 1}).to_list()}
    return decisions, intents - ready


async def test_kill_between_storing_and_publishing_rungs(system: FaultSystem, tally: Tally) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(system.endpoints.mongo_uri)
    emissions = client[system.database("deadlines")]["emissions"]

    async def some_stored() -> bool:
        return await emissions.count_documents({"unit_id": {"$ne": None}}) >= KILL_AFTER

    try:
        system.launch("deadlines")
        await eventually(some_stored, timeout=90, interval=0.05, what="the first rungs stored")
        system.kill("deadlines")
        await asyncio.sleep(0.5)  # a write or produce request the process had sent lands now
        decisions, mid_decision = await store(system, client)
    finally:
        await client.close()
    at_kill = await labels(system)
    stored = {("rung", d["unit_id"], d["_id"].rsplit("|", 1)[-1]) for d in decisions}
    unpublished = stored - set(at_kill)
    # The window this test is about: rungs stored and not (all) on Kafka when the process died.
    assert unpublished, f"every stored rung was already published: {len(stored)} stored"

    restart_at = system.clock_now() + SETTLE_AFTER
    system.start("deadlines", env={"BAOCAO_CLOCK_START": restart_at.isoformat()})
    expected = rungs_of("b3") | {("opened",)}
    await published(system, expected)
    await settled(system, "deadlines")
    found = await events(system)
    lost, repeated = lost_and_repeated(found, expected)
    resent = sum((await labels(system)).values()) - sum(found.values())
    tally(
        "kill -9 deadlines between storing and publishing rungs",
        len(expected),
        lost,
        repeated,
        f"at the kill {len(stored)} rungs stored, {len(unpublished)} not on Kafka, "
        f"{len(mid_decision)} intent(s) mid-decision; "
        f"rungs decided twice: {await decided_twice(system)}; "
        f"records resent under their event id: {resent}",
    )
    assert set(found) <= expected, sorted(set(found) - expected)
    assert (lost, repeated) == (0, 0), sorted(expected - set(found))[:5]
    # At most the rungs whose records were in flight at the kill go out a second time.
    assert resent <= len(unpublished), resent


async def test_two_replicas_send_each_rung_once(system: FaultSystem, tally: Tally) -> None:
    system.signal("deadlines", signal.SIGTERM)
    # Their loops scan once, at start (before b2); after that they scan when the test says,
    # both at once, so that the two scans of the same rungs really overlap.
    env = {
        "BAOCAO_CLOCK_START": (B2 - dt.timedelta(seconds=LEAD)).isoformat(),
        "BAOCAO_SCAN_INTERVAL_SECONDS": "3600",
    }
    launched = state["launched"] = time.monotonic()
    for name in ("deadlines", "deadlines-b"):
        system.launch(name, service="deadlines", env=env)
    for name in ("deadlines", "deadlines-b"):
        system.wait_ready(name)
    ready_after = time.monotonic() - launched
    # Otherwise a replica's first scan comes after b2 and decides every rung alone.
    assert ready_after < LEAD, f"the replicas were ready {ready_after:.1f} s after launch"

    async def past_b2() -> bool:
        # Each process's clock starts when it builds its app, a moment after its launch.
        for name in ("deadlines", "deadlines-b"):
            periods = await get_json(system.url(name), "/api/v1/periods")
            if dt.datetime.fromisoformat(periods["now"]) < B2:
                return False
        return True

    await eventually(past_b2, timeout=LEAD + 10, interval=0.1, what="both clocks past b2")

    async def scan(name: str) -> int:
        async with httpx.AsyncClient(base_url=system.url(name), timeout=30) as http:
            response = await http.post("/api/v1/scan", headers=bearer(Role.ADMIN))
            response.raise_for_status()
            return int(response.json()["recorded"])

    await asyncio.gather(scan("deadlines"), scan("deadlines-b"))
    everything = rungs_of("b3", "b2") | {("opened",)}
    expected = rungs_of("b2")
    await published(system, expected)
    await settled(system, "deadlines", "deadlines-b")
    found = await labels(system)
    lost, copies = lost_and_repeated(found, expected)
    twice = await decided_twice(system)
    split = [
        (await scrape(system.url(name))).get("baocao_deadline_rungs_emitted_total", 0.0)
        for name in ("deadlines", "deadlines-b")
    ]
    tally(
        "2 deadlines replicas at a rung instant",
        len(expected),
        lost,
        twice,
        f"rungs decided by each replica: {split[0]:.0f} + {split[1]:.0f}; "
        f"both ready {LEAD - ready_after:.1f} s before the instant; "
        f"{copies} event(s) published twice",
    )
    assert set(found) <= everything, sorted(set(found) - everything)
    assert sum(split) == len(UNITS), split  # each rung decided by one replica only
    # Each rung is one event (one event id, decided once), and it reaches Kafka once: each
    # replica's relay publishes the entries its replica wrote in the shared outbox.
    assert (lost, twice, copies) == (0, 0, 0), sorted(expected - set(found))[:5]


async def test_ten_days_down_sends_only_the_latest_rung(system: FaultSystem, tally: Tally) -> None:
    await asyncio.gather(
        *(asyncio.to_thread(system.signal, n, signal.SIGTERM) for n in ("deadlines", "deadlines-b"))
    )
    # The replicas' clocks started at B2 - LEAD when they were launched.
    stopped_at = B2 - dt.timedelta(seconds=LEAD - (time.monotonic() - state["launched"]))
    env = {"BAOCAO_CLOCK_START": (stopped_at + DOWNTIME).isoformat()}
    system.start("deadlines", env=env)
    expected = rungs_of("a1")
    everything = rungs_of("b3", "b2", "a1") | {("opened",)}
    await published(system, expected)
    await settled(system, "deadlines")
    found = await labels(system)
    lost, repeated = lost_and_repeated(found, expected)
    sent_anyway = sum(found[label] for label in rungs_of("b1", "b0"))

    schedule = await get_json(system.url("deadlines"), f"/api/v1/periods/{PERIOD}/schedule")
    wrong = []
    for row in schedule["units"]:
        by_status: dict[str, list[str]] = {}
        for rung in row["rungs"]:
            by_status.setdefault(rung["status"], []).append(rung["rung"])
        if by_status != {"emitted": ["b3", "b2", "a1"], "skipped": ["b1", "b0"], "pending": LATER}:
            wrong.append((row["unit_id"], by_status))
    skipped_metric = (await scrape(system.url("deadlines"))).get(
        "baocao_deadline_rungs_skipped_total", 0.0
    )
    tally(
        "10 days down: only the latest rung per unit",
        len(expected),
        lost,
        repeated + sent_anyway,
        f"skipped rungs published: {sent_anyway}; schedule rows wrong: {len(wrong)}; "
        f"rungs_skipped metric {skipped_metric:.0f}; "
        f"rungs decided twice: {await decided_twice(system)}",
    )
    assert set(found) <= everything, sorted(set(found) - everything)
    assert (lost, repeated, sent_anyway) == (0, 0, 0), sorted(expected - set(found))[:5]
    assert len(schedule["units"]) == len(UNITS)
    assert not wrong, wrong[:3]
    assert skipped_metric == 2 * len(UNITS)
