"""Service processes stopped or killed under load, and a whole topic delivered twice.

One system; the tests run in this order and the later ones count on the earlier ones:

1. notify is stopped (SIGTERM) while its handler hangs on a mail server that never answers;
2. notify and consolidate are killed (SIGKILL) in the middle of a burst of 300 reports;
3. the receipt interrupted in 1 has arrived exactly once (notify's lease on an interrupted
   message runs 120 s, so this check comes after the burst, which outlasts it);
4. submissions is killed under a burst of POSTs;
5. every record of the submission-received topic is published a second time.

Each step counts its own reports: receipt mail by (receipt number, contact) in the private
Mailpit, the consolidate projection (by submission id, read from its store), its preview and
the report it publishes, and what the submissions store and the topic hold.
"""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from contracts.topics import SUBMISSION_RECEIVED
from services.common.auth import Role
from services.notify.config import NotifySettings
from tests.faults.conftest import Tally
from tests.faults.harness import (
    SIX_MONTHS_2027,
    FaultSystem,
    Inbox,
    StallingSmtp,
    burst,
    consolidation_errors,
    contacts_of,
    count_mail,
    duplicates,
    expected_receipt_pairs,
    get_json,
    lag,
    producer,
    read_topic,
    report_body,
    settled,
    submission_events,
    with_units,
)
from tests.support.auth import bearer
from tests.support.waiting import eventually

log = logging.getLogger(__name__)

pytestmark = pytest.mark.faults

BURST = 300
"""Reports in the kill burst: about 310 receipt mails (one unit has two contacts)."""
POSTS = 120
"""Reports in the burst that loses submissions."""
MARKER = re.compile(r"\[(m-[0-9a-f]{16})\]")

state: dict[str, Any] = {}
"""What an earlier step left for a later one (see the module docstring)."""


async def restart_after_kill(system: FaultSystem, name: str) -> None:
    system.kill(name)
    await asyncio.to_thread(system.start, name)


async def wait_for_mail(
    system: FaultSystem, pairs: list[tuple[str, str]], timeout: float
) -> dict[tuple[str, str], list[str]]:
    """The inbox once every pair has mail, or at the deadline (then the missing are lost)."""
    inbox = Inbox(system.endpoints.mailpit_api)
    started = time.monotonic()

    async def all_arrived() -> bool:
        found = await inbox.receipts(system.sender)
        return all(found.get(p) for p in pairs)

    try:
        await eventually(all_arrived, timeout=timeout, interval=1.0, what="every receipt mail")
    except AssertionError:
        log.warning("not every receipt arrived within %.0f s", timeout)
    log.info("mail waited for %.1f s", time.monotonic() - started)
    return await inbox.receipts(system.sender)


async def stored(system: FaultSystem, service: str, collection: str) -> list[dict[str, Any]]:
    """A service's collection read straight from its database: what it really holds."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(system.endpoints.mongo_uri)
    try:
        return await client[system.database(service)][collection].find({}).to_list()
    finally:
        await client.close()


def marker_of(document: dict[str, Any]) -> str:
    match = MARKER.search(document["tasks"][0]["results"])
    assert match, document["tasks"][0]["results"]
    return match.group(1)


async def preview(system: FaultSystem) -> dict[str, Any]:
    path = f"/api/v1/periods/{SIX_MONTHS_2027}/preview"
    return dict(await get_json(system.url("consolidate"), path))


async def duplicate_claims(system: FaultSystem) -> float:
    """Notices notify found already claimed (``baocao_notifications_total``)."""
    async with httpx.AsyncClient(base_url=system.url("notify"), timeout=30) as http:
        text = (await http.get("/metrics")).text
    prefix = 'baocao_notifications_total{channel="email",outcome="duplicate"} '
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(prefix))


async def test_sigterm_during_a_slow_handler_leaves_its_record_uncommitted(
    system: FaultSystem, tally: Tally
) -> None:
    plan = system.plan
    unit_id = "xa-sa-loong"
    # The reminders deadlines sends when the system starts (1 June: the 14-working-day rung)
    # are handled first, so that the one record left uncommitted below is the stalled one.
    await settled(system, "notify")
    async with StallingSmtp() as smtp:
        system.signal("notify", signal.SIGTERM)
        system.start(
            "notify",
            env={"BAOCAO_SMTP_PORT": str(smtp.port), "BAOCAO_SMTP_TIMEOUT_SECONDS": "120"},
        )
        async with httpx.AsyncClient(base_url=system.url("submissions"), timeout=30) as http:
            response = await http.post(
                "/api/v1/submissions",
                json=report_body(plan, SIX_MONTHS_2027, unit_id, "m-slow"),
                headers=bearer(Role.OFFICER, unit_id),
            )
        assert response.status_code == 201, response.text

        async def hanging() -> bool:
            return smtp.connections > 0

        await eventually(hanging, what="notify's handler to reach the mail server")
        stopped_at = time.monotonic()
        exit_status = system.signal("notify", signal.SIGTERM)
        stop_seconds = time.monotonic() - stopped_at
    uncommitted = await lag(system, "notify")
    system.start("notify", env={})  # back to the private Mailpit
    state["slow"] = (response.json(), unit_id)
    log.info(
        "notify stopped in %.1f s (exit %s), %d uncommitted", stop_seconds, exit_status, uncommitted
    )
    # The record's fate is counted in test_the_interrupted_receipt_arrives_once.
    assert uncommitted == 1, "the record whose handler was interrupted must not be committed"
    assert stop_seconds < 10, f"SIGTERM took {stop_seconds:.1f} s (Docker kills after 10 s)"


async def test_kill_notify_and_consolidate_mid_burst(system: FaultSystem, tally: Tally) -> None:
    filings = await burst(
        system,
        BURST,
        on_progress={
            BURST // 3: lambda: restart_after_kill(system, "notify"),
            2 * BURST // 3: lambda: restart_after_kill(system, "consolidate"),
        },
    )
    ok = [f for f in filings if f.status == 201]
    state["burst"] = ok
    refused = [f for f in filings if f.status != 201]
    pairs = expected_receipt_pairs(system.plan, ok)
    found = await wait_for_mail(system, pairs, timeout=200)
    await settled(system, "notify", "consolidate")
    # At the kill, notify may have had as many messages out as its fan-out allows (they are
    # sent concurrently): accepted by Mailpit, not yet recorded; each is sent again, with the
    # same Message-ID.
    mail = count_mail(
        pairs,
        await Inbox(system.endpoints.mailpit_api).receipts(system.sender),
        in_flight=NotifySettings.model_fields["notify_fan_out"].default,
    )
    tally(
        "kill -9 notify mid-burst: receipt mails",
        mail.expected,
        mail.lost,
        mail.duplicated,
        f"{len(ok)} of {BURST} reports accepted; {mail.resent} in flight resent, same Message-ID",
    )

    projected = [
        d["_id"] for d in await stored(system, "consolidate", f"submissions.{SIX_MONTHS_2027}")
    ]
    ids = {f.receipt["submission_id"] for f in ok if f.receipt}
    revisions = Counter(f.unit_id for f in ok)
    if "slow" in state:  # the report of the first step is in the period too
        ids.add(state["slow"][0]["submission_id"])
        revisions[state["slow"][1]] += 1
    seen = await preview(system)
    async with httpx.AsyncClient(base_url=system.url("consolidate"), timeout=60) as http:
        response = await http.post(
            f"/api/v1/periods/{SIX_MONTHS_2027}/consolidate",
            headers={"Idempotency-Key": f"{system.namespace}-burst", **bearer(Role.ADMIN)},
        )
    assert response.status_code == 202, response.text
    lost_p, dup_p, details_p = consolidation_errors(seen, revisions)
    report = await with_units(system, response.json())
    lost_r, dup_r, details_r = consolidation_errors(report, revisions)
    lost = len(ids - set(projected)) + lost_p + lost_r
    dup = duplicates(projected) + len(set(projected) - ids) + dup_p + dup_r
    tally(
        "kill -9 consolidate mid-burst: projection, preview, report",
        len(ids),
        lost,
        dup,
        f"{len(revisions)} units",
    )
    assert not refused, [(f.unit_id, f.status, f.error) for f in refused][:5]
    assert (mail.lost, mail.duplicated) == (0, 0), (mail.missing[:10], mail.repeated)
    assert (lost, dup) == (0, 0), (sorted(ids - set(projected))[:10], details_p, details_r)
    assert found  # the inbox was read


async def test_the_interrupted_receipt_arrives_once_after_restart(
    system: FaultSystem, tally: Tally
) -> None:
    receipt, unit_id = state["slow"]
    pairs = [(receipt["receipt_no"], a) for a in contacts_of(system.plan, unit_id)]
    found = await wait_for_mail(system, pairs, timeout=150)
    await settled(system, "notify")
    mail = count_mail(pairs, found)
    tally("SIGTERM during a slow handler: receipt after restart", 1, mail.lost, mail.duplicated)
    assert (mail.lost, mail.duplicated) == (0, 0), (mail.missing, mail.repeated)


async def test_kill_submissions_mid_burst(system: FaultSystem, tally: Tally) -> None:
    history = f"submissions.{SIX_MONTHS_2027}"
    before = {d["_id"] for d in await stored(system, "submissions", history)}
    filings = await burst(
        system,
        POSTS,
        workers=12,
        on_progress={POSTS // 2: lambda: restart_after_kill(system, "submissions")},
    )
    unanswered = [f for f in filings if f.status is None]
    answered = [f for f in filings if f.status == 201]
    refused = [f for f in filings if f.status not in (None, 201)]
    topic = system.topic(SUBMISSION_RECEIVED)

    async def every_stored_report_published() -> bool:
        docs = [d for d in await stored(system, "submissions", history) if d["_id"] not in before]
        events = submission_events(await read_topic(system.endpoints.kafka_bootstrap, topic))
        published = {e["payload"]["submission_id"] for e in events}
        return all(d["_id"] in published for d in docs)

    # An intent whose request died is settled 30 s after it was written (outbox.py).
    try:
        await eventually(every_stored_report_published, timeout=120, interval=2.0, what="relay")
    except AssertionError:
        log.warning("some stored reports were never published")
    await settled(system, "submissions", "notify", "consolidate")

    docs = [d for d in await stored(system, "submissions", history) if d["_id"] not in before]
    by_marker = {marker_of(d): d for d in docs}
    events = submission_events(await read_topic(system.endpoints.kafka_bootstrap, topic))
    ours = [e for e in events if e["payload"]["submission_id"] not in before]
    published = Counter(e["payload"]["submission_id"] for e in ours)
    projected = {
        d["_id"] for d in await stored(system, "consolidate", history) if d["_id"] not in before
    }
    found = await Inbox(system.endpoints.mailpit_api).receipts(system.sender)
    lost: list[str] = []
    for f in answered:
        assert f.receipt is not None
        if f.receipt["submission_id"] not in {d["_id"] for d in docs}:
            lost.append(f"201 not stored: {f.marker}")
    for d in docs:
        what = "201" if any(f.marker == marker_of(d) for f in answered) else "unanswered"
        if not published[d["_id"]]:
            lost.append(f"{what} stored, never published: {d['_id']}")
        elif d["_id"] not in projected:
            lost.append(f"{what} published, not projected: {d['_id']}")
        for address in contacts_of(system.plan, d["unit_id"]):
            if not found.get((d["receipt_no"], address)):
                lost.append(f"{what} without receipt mail: {d['receipt_no']} to {address}")
    phantom = [e for e in ours if e["payload"]["submission_id"] not in {d["_id"] for d in docs}]
    lost += [f"published, not stored: {e['payload']['submission_id']}" for e in phantom]
    repeated_mail = sum(
        len(found.get((d["receipt_no"], a), [])) - 1
        for d in docs
        for a in contacts_of(system.plan, d["unit_id"])
        if len(found.get((d["receipt_no"], a), [])) > 1
    )
    # An event the killed relay had published but not yet marked is published again by the
    # next one (at-least-once: Kafka's acknowledgement and the store's mark cannot be one
    # write); it carries the same event and submission id, so consumers drop it. Counted
    # apart from the effects: a second projection or a second receipt mail is a duplicate.
    republished = sum(n - 1 for n in published.values() if n > 1)
    dup = repeated_mail
    complete = sum(1 for f in unanswered if f.marker in by_marker)
    tally(
        "kill -9 submissions mid-burst: 201s and unanswered",
        len(answered) + len(unanswered),
        len(lost),
        dup,
        f"{len(unanswered)} unanswered: {complete} complete, {len(unanswered) - complete} "
        f"absent; {republished} event(s) republished, same event id",
    )
    state["storm_before"] = await preview(system)
    assert not refused, [(f.unit_id, f.status, f.error) for f in refused][:5]
    assert (len(lost), dup) == (0, 0), (lost[:10], published.most_common(3))


async def test_duplicate_storm_sends_nothing_new(system: FaultSystem, tally: Tally) -> None:
    inbox = Inbox(system.endpoints.mailpit_api)
    await settled(system, "deadlines", "notify", "consolidate")
    before_preview = await preview(system)
    before_mail = len(await inbox.messages(system.sender))
    bootstrap = system.endpoints.kafka_bootstrap
    topic = system.topic(SUBMISSION_RECEIVED)
    records = await read_topic(bootstrap, topic)
    claims_before = await duplicate_claims(system)
    replay = await producer(bootstrap)
    try:
        sent = [
            await replay.send(
                topic, r.value, key=r.key, partition=r.partition, headers=list(r.headers)
            )
            for r in records
        ]
        await asyncio.gather(*sent)
    finally:
        await replay.stop()
    await settled(system, "deadlines", "notify", "consolidate")
    # Proof that notify read the storm rather than skipped it: one duplicate per receipt.
    receipts = sum(
        len(contacts_of(system.plan, e["payload"]["unit_id"])) for e in submission_events(records)
    )
    assert await duplicate_claims(system) - claims_before == receipts
    after_preview = await preview(system)
    after_mail = len(await inbox.messages(system.sender))
    changed = after_preview["content_hash"] != before_preview["content_hash"]
    lost = max(before_preview["received"] - after_preview["received"], 0)
    new_mail = after_mail - before_mail
    tally(
        "duplicate storm: whole topic re-published",
        len(records),
        lost,
        new_mail + int(changed),
        f"{new_mail} new mail, content hash {'changed' if changed else 'unchanged'}",
    )
    assert new_mail == 0
    assert not changed, (before_preview["content_hash"], after_preview["content_hash"])
    assert lost == 0
