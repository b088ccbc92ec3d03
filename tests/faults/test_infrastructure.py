"""The servers themselves fail: the Kafka broker is killed, FerretDB is restarted.

Never the shared servers: this module runs its own Kafka and FerretDB on free ports, from
the binaries the local stack already built (``bin/`` and ``kafka/`` are links to them) but
with private data and PID files, and stops them at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from contracts.topics import SUBMISSION_RECEIVED
from deploy.local import stack
from tests.faults.conftest import Tally
from tests.faults.harness import (
    SIX_MONTHS_2027,
    Endpoints,
    FaultSystem,
    Filing,
    Inbox,
    Mailpit,
    burst,
    contacts_of,
    free_port,
    read_topic,
    settled,
    submission_events,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

REPORTS = 60
HISTORY = f"submissions.{SIX_MONTHS_2027}"


class PrivateServers:
    def __init__(self, tmp: Path) -> None:
        stack_dir = tmp / "stack"
        stack_dir.mkdir()
        for shared in ("bin", "kafka"):
            (stack_dir / shared).symlink_to(stack.Layout().stack_dir / shared)
        self.layout = stack.Layout(
            stack_dir=stack_dir,
            data_dir_override=None,
            kafka_port=free_port(),
            kafka_controller_port=free_port(),
            kafka_heap="-Xms128m -Xmx512m",
            mongo_port=free_port(),
            ferretdb_debug_port=free_port(),
            smtp_port=free_port(),
            mailpit_port=free_port(),
            # The FerretDB these faults kill and restart is private; on SQLite it needs no
            # second server of its own (the shared stack runs the default, PostgreSQL).
            ferretdb_backend="sqlite",
        )
        processes = stack.servers(self.layout)
        self.kafka, self.ferretdb = processes["kafka"], processes["ferretdb"]

    def start(self) -> None:
        stack.start_all([self.kafka, self.ferretdb])

    def stop(self) -> None:
        stack.stop_all([self.kafka, self.ferretdb])

    def kill_kafka(self) -> None:
        pid = self.kafka.pid()
        assert pid is not None, "the private Kafka is not running"
        os.killpg(pid, signal.SIGKILL)
        if self.kafka._child is not None:
            self.kafka._child.wait(timeout=30)

    def start_kafka(self) -> None:
        self.kafka.start()
        self.kafka.wait_healthy()

    def restart_ferretdb(self) -> None:
        self.ferretdb.stop()
        self.ferretdb.start()
        self.ferretdb.wait_healthy()


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateServers]:
    # The binaries of the shared stack, wherever BAOCAO_STACK_DIR keeps them.
    built = stack.Layout().stack_dir
    if not (built / "bin").exists() or not (built / "kafka").exists():
        pytest.skip("the local stack's binaries are not built (make servers)")
    servers = PrivateServers(tmp_path_factory.mktemp("private"))
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()


@pytest.fixture(scope="module")
def system(
    private: PrivateServers, private_mailpit: Mailpit, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultSystem]:
    layout = private.layout
    endpoints = Endpoints(
        f"127.0.0.1:{layout.kafka_port}",
        f"mongodb://127.0.0.1:{layout.mongo_port}/",
        private_mailpit.smtp_port,
        private_mailpit.api,
    )
    fault_system = FaultSystem(endpoints, tmp_path_factory.mktemp("infra"))
    fault_system.start_all()
    yield fault_system
    fault_system.stop()


async def stored_history(system: FaultSystem, service: str) -> list[dict[str, Any]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        system.endpoints.mongo_uri, serverSelectionTimeoutMS=10000
    )
    try:
        return await client[system.database(service)][HISTORY].find({}).to_list()
    finally:
        await client.close()


async def audit(
    system: FaultSystem, filings: list[Filing], before: set[str]
) -> tuple[int, int, list[str]]:
    """Every stored report of this burst published once, projected and mailed once; every
    201 stored. Returns (lost, duplicated, details)."""
    topic = system.topic(SUBMISSION_RECEIVED)

    async def relayed() -> bool:
        docs = [d for d in await stored_history(system, "submissions") if d["_id"] not in before]
        events = submission_events(await read_topic(system.endpoints.kafka_bootstrap, topic))
        published = {e["payload"]["submission_id"] for e in events}
        return all(d["_id"] in published for d in docs)

    # The relay resumes by itself; an intent of a failed request settles after 30 s. What
    # has not been published by the deadline is counted as lost below.
    with contextlib.suppress(AssertionError):
        await eventually(relayed, timeout=120, interval=2.0, what="the relay to catch up")
    await settled(system, "submissions", "notify", "consolidate", timeout=180)
    docs = {
        d["_id"]: d for d in await stored_history(system, "submissions") if d["_id"] not in before
    }
    events = submission_events(await read_topic(system.endpoints.kafka_bootstrap, topic))
    published = Counter(
        e["payload"]["submission_id"] for e in events if e["payload"]["submission_id"] not in before
    )
    projected = {d["_id"] for d in await stored_history(system, "consolidate")}
    mail = await Inbox(system.endpoints.mailpit_api).receipts(system.sender)
    details = []
    for f in filings:
        if f.receipt is not None and f.receipt["submission_id"] not in docs:
            details.append(f"201 without its stored record: {f.receipt['submission_id']}")
    dup = sum(n - 1 for n in published.values() if n > 1)
    repeats = [f"published {n} times: {sid}" for sid, n in published.items() if n > 1]
    for sid, d in docs.items():
        if not published[sid]:
            details.append(f"stored, never published: {sid}")
        elif sid not in projected:
            details.append(f"published, not projected: {sid}")
        for address in contacts_of(system.plan, d["unit_id"]):
            copies = len(mail.get((d["receipt_no"], address), []))
            if not copies:
                details.append(f"no receipt mail: {d['receipt_no']} to {address}")
            if copies > 1:
                dup += copies - 1
                ids = mail[(d["receipt_no"], address)]
                repeats.append(f"{copies} receipt mails for {d['receipt_no']} to {address}: {ids}")
    details += [f"published, not stored: {sid}" for sid in published if sid not in docs]
    return len(details), dup, details + repeats


async def test_broker_killed_with_reports_in_flight(
    system: FaultSystem, private: PrivateServers, tally: Tally
) -> None:
    before = {d["_id"] for d in await stored_history(system, "submissions")}
    filings = await burst(
        system,
        REPORTS,
        workers=6,
        on_progress={
            REPORTS // 3: lambda: asyncio.to_thread(private.kill_kafka),
            2 * REPORTS // 3: lambda: asyncio.to_thread(private.start_kafka),
        },
    )
    ok = [f for f in filings if f.status == 201]
    lost, dup, details = await audit(system, filings, before)
    tally(
        "SIGKILL Kafka broker mid-intake, restart",
        len(filings),
        lost,
        dup,
        f"{len(ok)} answered 201",
    )
    assert len(ok) == REPORTS, "intake does not need Kafka: every report is accepted"
    assert (lost, dup) == (0, 0), details[:10]


async def test_ferretdb_restarted_during_intake(
    system: FaultSystem, private: PrivateServers, tally: Tally
) -> None:
    before = {d["_id"] for d in await stored_history(system, "submissions")}
    filings = await burst(
        system,
        REPORTS,
        workers=6,
        on_progress={REPORTS // 3: lambda: asyncio.to_thread(private.restart_ferretdb)},
    )
    ok = [f for f in filings if f.status == 201]
    failed = Counter(f.status for f in filings if f.status != 201)
    lost, dup, details = await audit(system, filings, before)
    tally(
        "FerretDB restarted during intake",
        len(filings),
        lost,
        dup,
        f"{len(ok)} answered 201, others {dict(failed)}",
    )
    assert (lost, dup) == (0, 0), details[:10]
