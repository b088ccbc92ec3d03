"""Orchestration: events and requests in, report versions (with their event) stored.

The report the province receives at the close contains every submission accepted before the
close, whatever the lag between our two consumers: the period is marked closed *before* its
submissions are read, and a submission projected *after* that mark amends the closing report
with a new version (see ``on_submission_received``; late causes are gathered into one
amendment, ``amendments.py``). A version is only recorded when it says
something new: its content hash differs from the latest version's.

Office decisions that judge a unit's punctuality (an approved extension, a returned version)
are kept as their events arrive; one learnt after the close amends the report the same way.

Each version is announced by ``ReportConsolidated`` v2 (the summary; the per-unit detail in a
JSON file stored with the documents) and, when it fits in a Kafka record, v1 beside it
(``publication.py``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts.envelope import Event
from contracts.events import (
    ExtensionDecided,
    FilingExceptionGranted,
    PeriodClosed,
    ReportConsolidatedPayload,
    ReportReviewed,
    SubmissionReceived,
)
from contracts.plan import Plan
from contracts.report_v2 import ReportConsolidatedV2Payload, ReportDetail, ReportSummary
from services.common.clock import Clock
from services.common.failures import PermanentError
from services.common.mongo import to_millis
from services.common.outbox import Outbox, Ref
from services.common.periods import Period, PeriodState
from services.common.reference import Catalog
from services.consolidate.amendments import LateCause, PendingAmendments
from services.consolidate.detail import detail_file, join, split, with_detail
from services.consolidate.documents import Beside, RenderedFile, reference, render
from services.consolidate.domain import (
    PeriodFold,
    Trigger,
    content_hash,
    previous_period,
    report_id_for_amendment,
    report_id_for_closing,
    report_id_for_request,
    shorter_window,
)
from services.consolidate.files import FileStore
from services.consolidate.metrics import ConsolidateMetrics
from services.consolidate.publication import V1_LIMIT, Announcement, announcement
from services.consolidate.status import PeriodStatus, period_status
from services.consolidate.store import (
    ConsolidateStore,
    MongoConsolidateStore,
    ReportExists,
    StoredReport,
    TermsStore,
    VersionTaken,
)

log = logging.getLogger(__name__)

CLOCK_SKEW = dt.timedelta(hours=1)
"""How far deadlines' clock may run ahead of ours; before closes_at less this, a period
cannot have been closed, and projecting a submission reads nothing else."""
MAX_VERSION_RACES = 20
"""Consolidations of one period racing each other; more than this means something is wrong."""


class UnknownPeriod(PermanentError):
    """The period is not in any plan this deployment runs."""


class PeriodNotOpen(Exception):
    """The period has not opened yet: there is nothing to consolidate."""


class TooManyVersionConflicts(Exception):
    """Consolidations of one period kept taking the version this one was about to record."""


@dataclass(frozen=True)
class Consolidation:
    """What consolidating needs; the same object serves the consumers and the HTTP routes."""

    catalog: Catalog
    store: ConsolidateStore
    outbox: Outbox
    clock: Clock
    wake: Callable[[], None]
    metrics: ConsolidateMetrics
    files: FileStore
    """Where each version's files go: its detail (always) and its DOCX, XLSX and PDF."""
    terms: TermsStore | None = None
    """Extensions and returns; without it, every unit is judged by the period's due."""
    public_url: str = "http://127.0.0.1:8003"
    """How the province reaches this service: the files' URLs start with it."""
    documents: bool = True
    """False: versions carry no DOCX, XLSX or PDF, only their detail (tests about versions:
    rendering takes seconds)."""
    render_pdf: bool = True
    pending: PendingAmendments = field(default_factory=PendingAmendments)
    """Late causes waiting for ``amend_closed_reports``; its pass waits on it."""


async def on_submission_received(event: SubmissionReceived, *, c: Consolidation) -> None:
    await on_submissions_received([event], c=c)


async def on_submissions_received(
    events: Sequence[SubmissionReceived], *, c: Consolidation
) -> None:
    """A fetched batch projected in one write per period; each new one then as below."""
    added = await c.store.add_submissions([event.payload for event in events])
    for event, new in zip(events, added, strict=True):
        if new:
            await _after_projection(event, c=c)
        else:
            log.debug("submission %s already projected", event.payload.submission_id)


async def _after_projection(event: SubmissionReceived, *, c: Consolidation) -> None:
    p = event.payload
    found = c.catalog.period(p.period_id)
    if found is None or c.clock.now() < found[1].closes_at - CLOCK_SKEW:
        return  # the close comes from deadlines at closes_at at the earliest: nothing to amend
    # Read after the insert: a close marked before this read amends here, a close marked
    # after it reads this submission itself (see the module docstring).
    if await c.store.is_closed(p.period_id):
        await _amend_later(c, p.period_id, f"submission {p.submission_id}", event)


async def on_report_reviewed(event: ReportReviewed, *, c: Consolidation) -> None:
    """A returned version: a resubmission after its ``resubmit_by`` is judged on its own."""
    if event.payload.decision != "returned" or c.terms is None:
        return
    await c.terms.record_return(event.payload)
    await _amend_if_closed(c, event.payload.period_id, event)


async def on_extension_decided(event: ExtensionDecided, *, c: Consolidation) -> None:
    """An approved extension: the unit is judged by its own due instant."""
    if event.payload.decision != "approved" or c.terms is None:
        return
    await c.terms.record_extension(event.payload)
    await _amend_if_closed(c, event.payload.period_id, event)


async def on_filing_exception_granted(event: FilingExceptionGranted, *, c: Consolidation) -> None:
    """A unit allowed to file after the lock: the status shows it apart from the missing.

    Nothing to amend: the report counts what was received and when, which an exception does
    not change; a report filed under it arrives as a submission like any late one."""
    if c.terms is None:
        return
    await c.terms.record_exception(event.payload)


async def _amend_if_closed(c: Consolidation, period_id: str, event: Event) -> None:
    # Recorded before this read, as a submission is: a close marked later reads it itself.
    # Not skipped on a redelivery: the cause's key is the event's, so it is counted once.
    found = c.catalog.period(period_id)
    if found is None or c.clock.now() < found[1].closes_at - CLOCK_SKEW:
        return
    if await c.store.is_closed(period_id):
        await _amend_later(c, period_id, f"{event.event_type} {event.event_id}", event)


async def _amend_later(c: Consolidation, period_id: str, key: str, event: Event) -> None:
    # Stored before the message is acknowledged: a crash before the amendment loses nothing.
    await c.store.add_late_cause(LateCause(period_id, key, event.correlation_id, event.event_id))
    c.pending.wanted([key])


async def amend_closed_reports(c: Consolidation) -> int:
    """Record, per period, one version counting every late cause waiting; forget them.

    Returns how many causes were settled. The first cause (by key) stands for the others in
    the event's correlation and causation; the report's cause names them all.
    """
    causes = await c.store.late_causes()
    c.pending.found(cause.key for cause in causes)
    by_period: dict[str, list[LateCause]] = {}
    for cause in sorted(causes, key=lambda cause: cause.key):
        by_period.setdefault(cause.period_id, []).append(cause)
    for period_id, waiting in by_period.items():
        keys = [cause.key for cause in waiting]
        found = c.catalog.period(period_id)
        if found is None:  # the plan was withdrawn since: there is no report to amend
            log.warning("late causes of unknown period %s dropped: %s", period_id, keys)
        else:
            await _record(
                c,
                *found,
                trigger="period_closed",
                report_id=report_id_for_amendment(keys),
                cause=f"{', '.join(keys)} after the close",
                correlation_id=waiting[0].correlation_id,
                causation_id=waiting[0].causation_id,
            )
        await c.store.forget_late_causes(keys)
        c.pending.settled(keys)
    return len(causes)


async def on_period_closed(event: PeriodClosed, *, c: Consolidation) -> None:
    plan, period = _resolve(c.catalog, event.payload.period_id)
    await c.store.mark_closed(period.id, c.clock.now())
    await _record(
        c,
        plan,
        period,
        trigger="period_closed",
        report_id=report_id_for_closing(event.event_id),
        cause=str(event.event_id),
        correlation_id=event.correlation_id,
        causation_id=event.event_id,
    )


async def consolidate_now(
    period_id: str, *, c: Consolidation, request_id: str, requested_by: str = ""
) -> ReportSummary:
    """A draft version on request; the same ``request_id`` again returns the same report.

    Its cause records who asked (``requested by <subject>: <request id>``).
    """
    plan, period = _resolve(c.catalog, period_id)
    if period.state(c.clock.now()) is PeriodState.UPCOMING:
        raise PeriodNotOpen(period.id)
    report_id = report_id_for_request(period.id, request_id)
    return await _record(
        c,
        plan,
        period,
        trigger="requested",
        report_id=report_id,
        cause=f"requested by {requested_by}: {request_id}" if requested_by else request_id,
        correlation_id=uuid.UUID(report_id),
        causation_id=None,
    )


async def preview(period_id: str, *, c: Consolidation) -> ReportConsolidatedPayload:
    """What a consolidation would say now; nothing is stored or published."""
    plan, period = _resolve(c.catalog, period_id)
    latest = await c.store.latest(period.id)
    payload = (await _folded(c, plan, period.id)).report(
        period,
        now=to_millis(c.clock.now()),
        trigger="requested",
        version=latest.payload.version + 1 if latest else 1,
        report_id="preview",
        terms=await c.terms.terms(period.id) if c.terms else None,
    )
    return payload.model_copy(update={"content_hash": content_hash(payload)})


async def live_status(period_id: str, *, c: Consolidation) -> PeriodStatus:
    """Who is expected, who reported (on time, late), who is missing or returned, now."""
    plan, _ = _resolve(c.catalog, period_id)
    payload = await preview(period_id, c=c)
    return period_status(payload, plan, await c.terms.terms(period_id) if c.terms else {})


async def _folded(c: Consolidation, plan: Plan, period_id: str) -> PeriodFold:
    """The period's projection streamed through the fold: every revision is read once, and
    only each unit's latest stays in memory (a national roll-up has tens of thousands)."""
    fold = PeriodFold(plan)
    async for row in c.store.submissions(period_id):
        fold.add(row)
    return fold


def _resolve(catalog: Catalog, period_id: str) -> tuple[Plan, Period]:
    found = catalog.period(period_id)
    if found is None:
        raise UnknownPeriod(period_id)
    return found


def _says_nothing_new(
    latest: ReportSummary, digest: str, trigger: Trigger, latest_hash: str
) -> bool:
    # A draft identical to what was published adds nothing; the first closing version is
    # recorded even when a draft said the same, because it tells the province "final".
    return latest_hash == digest and (trigger == "requested" or latest.trigger == trigger)


async def _record(
    c: Consolidation,
    plan: Plan,
    period: Period,
    *,
    trigger: Trigger,
    report_id: str,
    cause: str,
    correlation_id: uuid.UUID,
    causation_id: uuid.UUID | None,
) -> ReportSummary:
    """Record a version and queue its events; the v2 payload (or the one recorded before)."""
    existing = await c.store.report(period.id, report_id)
    if existing is not None:
        log.info("report %s for %s already recorded (cause %s)", report_id, period.id, cause)
        return existing.payload
    # BSON keeps milliseconds: the stored report must equal the published one.
    now = to_millis(c.clock.now())
    for _ in range(MAX_VERSION_RACES):
        # Read again after a lost race: the winner may be an amendment with a submission
        # this version must not leave out.
        fold = await _folded(c, plan, period.id)
        terms = await c.terms.terms(period.id) if c.terms else None
        latest = await c.store.latest(period.id)
        payload = fold.report(
            period,
            now=now,
            trigger=trigger,
            version=latest.payload.version + 1 if latest else 1,
            report_id=report_id,
            terms=terms,
        )
        digest = content_hash(payload)
        if latest and _says_nothing_new(latest.payload, digest, trigger, latest.content_hash):
            log.info("%s: nothing new since v%d (%s)", period.id, latest.payload.version, cause)
            return latest.payload
        payload = payload.model_copy(
            update={
                "content_hash": digest,
                "supersedes": latest.payload.report_id if latest else None,
            }
        )
        files: list[RenderedFile] = []
        if c.documents:
            # A requested version is a draft: the document says "DỰ THẢO".
            rendered = await render(
                payload,
                plan,
                draft=trigger == "requested",
                with_pdf=c.render_pdf,
                beside=await _beside(c, plan, period),
            )
            ref = reference(
                rendered, public_url=c.public_url, period_id=period.id, report_id=report_id
            )
            payload = payload.model_copy(update={"document": ref})
            files = list(rendered.files)
        summary, detail = split(payload)
        # Canonical JSON of every unit: seconds at a national roll-up, off the event loop.
        detail_bytes = await asyncio.to_thread(detail_file, detail, payload.version)
        files.append(detail_bytes)
        v2 = with_detail(summary, detail_bytes, public_url=c.public_url)
        out = announcement(
            payload,
            v2,
            occurred_at=now,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        announced = Ref(MongoConsolidateStore.reports_name(period.id), report_id)
        entries = [await c.outbox.intend(out.v2, announced)]
        if out.v1 is not None:
            entries.append(await c.outbox.intend(out.v1, announced))
        # The files before the report that names them, both before the commit: no event
        # ever announces a file that is not there.
        try:
            await c.files.put(period.id, entries[0]["_id"], files)
            await c.store.add_report(
                v2,
                cause=cause,
                content_hash=digest,
                event_id=entries[0]["_id"],
                v1_event_id=entries[1]["_id"] if out.v1 is not None else None,
            )
        except VersionTaken:
            await _abandon(c, period.id, entries, files)
            continue
        except ReportExists:
            await _abandon(c, period.id, entries, files)
            stored = await c.store.report(period.id, report_id)
            if stored is None:  # only if someone deletes reports by hand
                raise
            return stored.payload
        for entry in entries:
            await c.outbox.commit(entry)
        c.metrics.consolidated(trigger)
        if out.v1 is None:
            c.metrics.v1_withheld()
        c.wake()
        _log_recorded(v2, trigger, out)
        return v2
    raise TooManyVersionConflicts(f"{period.id}: {MAX_VERSION_RACES} conflicts in a row")


def _log_recorded(v2: ReportConsolidatedV2Payload, trigger: Trigger, out: Announcement) -> None:
    log.info(
        "report %s v%d for %s recorded (%s): %d/%d received; v2 event %d bytes, detail %d",
        v2.report_id,
        v2.version,
        v2.period_id,
        trigger,
        v2.received,
        v2.expected,
        len(out.v2.model_dump_json().encode()),
        v2.detail.size,
    )
    if out.v1 is None:
        log.warning(
            "report %s v%d for %s: v1 withheld, published on v2 only (v1 event %d bytes or "
            "more, a Kafka record takes %d)",
            v2.report_id,
            v2.version,
            v2.period_id,
            out.v1_bytes,
            V1_LIMIT,
        )


async def _abandon(
    c: Consolidation, period_id: str, entries: list[dict[str, Any]], files: list[RenderedFile]
) -> None:
    for entry in entries:
        await c.outbox.abandon(entry)
    await c.files.discard(period_id, entries[0]["_id"], [f.filename for f in files])


async def _beside(c: Consolidation, plan: Plan, period: Period) -> Beside:
    """The latest reports of the previous period and of a shorter window, where recorded."""
    previous, shorter = previous_period(plan, period), shorter_window(plan, period)
    before = await c.store.latest(previous.id) if previous else None
    within = await c.store.latest(shorter.id) if shorter else None
    return Beside(
        previous=before.payload if before else None,
        # Its units' figures are compared with these: the whole report, detail included.
        shorter=await _whole(c, shorter.id, within) if shorter and within else None,
    )


async def _whole(
    c: Consolidation, period_id: str, stored: StoredReport
) -> ReportConsolidatedPayload | None:
    """A recorded version whole again: its summary and its detail (inline before v2, in its
    file since); None if the file is gone."""
    detail = stored.inline_detail
    if detail is None and isinstance(stored.payload, ReportConsolidatedV2Payload):
        found = await c.files.get(period_id, stored.event_id, stored.payload.detail.filename)
        if found is None:
            log.warning("%s: detail file of %s missing", period_id, stored.payload.report_id)
            return None
        detail = await asyncio.to_thread(ReportDetail.model_validate_json, found.data)
    return join(stored.payload, detail) if detail is not None else None
