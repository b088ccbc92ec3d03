"""Storage of the consolidate service: the submissions projection and the reports.

Partitioned by period, because the store reads by scanning (see bench/README.md): projecting
a submission is one insert whatever the history holds, and consolidating a period reads that
period's collection in one pass, never the others.

- ``submissions.<period_id>``: the projection, insert-only, ``_id`` = submission id.
- ``reports.<period_id>``: every version of the period's report; a unique version index
  decides races. A version is stored as its v2 payload (the summary; the per-unit detail is a
  file, ``files.py``), so its document stays small whatever the units; one recorded before v2
  holds its v1 payload whole. Its events (v2, and v1 when it fits) leave through the outbox
  (``services.common.outbox``); ``event_ids`` names both, ``event_id`` the v2's, which owns
  the version's files.
- ``periods``: one small document per period: whether it has closed (see ``mark_closed``).
- ``late_causes``: submissions and decisions learnt after a close, each until the amendment
  that counts it is recorded (see ``amendments.py``); empty but for moments after a close.
- ``extensions.<period_id>`` (``_id`` = unit id, the latest approval) and ``returns.<period_id>``
  (``_id`` = ``unit|revision``, insert-only): what office staff decided, which judges a unit's
  punctuality (``TermsStore``); a few documents per unit, read whole when consolidating.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contracts.events import (
    ExtensionDecidedPayload,
    FilingExceptionGrantedPayload,
    ReportConsolidatedPayload,
    ReportReviewedPayload,
    SubmissionReceivedPayload,
    TaskReport,
)
from contracts.report_v2 import ReportConsolidatedV2Payload, ReportDetail, ReportSummary
from services.common.mongo import Document, insert_each, to_millis
from services.consolidate.amendments import LateCause
from services.consolidate.detail import split
from services.consolidate.domain import SubmissionRow, UnitTerms

SUBMISSIONS, REPORTS = "submissions.", "reports."
EXTENSIONS, RETURNS, EXCEPTIONS = "extensions.", "returns.", "exceptions."


class VersionTaken(Exception):
    """Another consolidation of the period recorded this version first."""


class ReportExists(Exception):
    """A report with this id is already recorded (its cause was handled before)."""


@dataclass(frozen=True)
class StoredReport:
    payload: ReportSummary
    """The v2 payload (``ReportConsolidatedV2Payload``); for a version recorded before v2, the
    summary of its v1 payload, whose detail is then ``inline_detail``."""
    cause: str
    content_hash: str
    event_id: str
    """The v2 event's (before v2, the v1 event's): the version's files are under it."""
    v1_event_id: str | None = None
    """None: v1 was withheld, it would not fit in a record."""
    inline_detail: ReportDetail | None = None


class ConsolidateStore(abc.ABC):
    @abc.abstractmethod
    async def add_submission(self, submission: SubmissionReceivedPayload) -> bool:
        """Project a submission; False if it was already there (a redelivery)."""

    async def add_submissions(self, submissions: Sequence[SubmissionReceivedPayload]) -> list[bool]:
        """``add_submission`` for each, in order; a store may do it in fewer round trips."""
        return [await self.add_submission(submission) for submission in submissions]

    @abc.abstractmethod
    def submissions(self, period_id: str) -> AsyncIterator[SubmissionRow]:
        """Every revision received for the period, streamed."""

    @abc.abstractmethod
    async def report(self, period_id: str, report_id: str) -> StoredReport | None: ...

    @abc.abstractmethod
    async def latest(self, period_id: str) -> StoredReport | None:
        """The period's report of the highest version, if any."""

    @abc.abstractmethod
    async def add_report(
        self,
        payload: ReportConsolidatedV2Payload,
        *,
        cause: str,
        content_hash: str,
        event_id: str,
        v1_event_id: str | None = None,
    ) -> None:
        """Record a report version announced by ``event_id`` (v2) and ``v1_event_id``.
        Raises :class:`ReportExists` or :class:`VersionTaken`."""

    @abc.abstractmethod
    async def reports(self, period_id: str) -> list[StoredReport]:
        """The period's reports, latest version first."""

    @abc.abstractmethod
    async def mark_closed(self, period_id: str, at: dt.datetime) -> None:
        """Remember that the period closed: later projections amend its report."""

    @abc.abstractmethod
    async def is_closed(self, period_id: str) -> bool: ...

    @abc.abstractmethod
    async def add_late_cause(self, cause: LateCause) -> None:
        """Remember a cause for an amendment until ``forget_late_causes``; once per key."""

    @abc.abstractmethod
    async def late_causes(self) -> list[LateCause]:
        """Every cause waiting, of every period."""

    @abc.abstractmethod
    async def forget_late_causes(self, keys: list[str]) -> None: ...


class MongoConsolidateStore(ConsolidateStore):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db
        self._periods: AsyncCollection[Document] = db["periods"]
        self._late: AsyncCollection[Document] = db["late_causes"]
        self._indexed: set[str] = set()

    @staticmethod
    def reports_name(period_id: str) -> str:
        return REPORTS + period_id

    async def create_indexes(self) -> None:
        """Per-period indexes are made when a period is first written (``_reports``)."""

    def _submissions(self, period_id: str) -> AsyncCollection[Document]:
        return self._db[SUBMISSIONS + period_id]

    async def _reports(self, period_id: str) -> AsyncCollection[Document]:
        name = self.reports_name(period_id)
        if name not in self._indexed:
            # Two consolidations racing for one version: the second insert fails and retries.
            await self._db[name].create_index("version", unique=True)
            self._indexed.add(name)
        return self._db[name]

    async def add_submission(self, submission: SubmissionReceivedPayload) -> bool:
        try:
            await self._submissions(submission.period_id).insert_one(_projected(submission))
        except DuplicateKeyError:
            return False
        return True

    async def add_submissions(self, submissions: Sequence[SubmissionReceivedPayload]) -> list[bool]:
        """One unordered ``insert_many`` per period (about a third of the cost per document
        of one insert each on FerretDB)."""
        positions: dict[str, list[int]] = {}
        for n, submission in enumerate(submissions):
            positions.setdefault(submission.period_id, []).append(n)
        added = [True] * len(submissions)
        for period_id, at in positions.items():
            documents = [_projected(submissions[n]) for n in at]
            for duplicate in await insert_each(self._submissions(period_id), documents):
                added[at[duplicate]] = False
        return added

    async def submissions(self, period_id: str) -> AsyncIterator[SubmissionRow]:
        async for doc in self._submissions(period_id).find({}):
            yield SubmissionRow(
                submission_id=doc["_id"],
                receipt_no=doc["receipt_no"],
                unit_id=doc["unit_id"],
                revision=doc["revision"],
                received_at=doc["received_at"].astimezone(dt.UTC),
                tasks=tuple(TaskReport.model_validate(t) for t in doc["tasks"]),
            )

    async def report(self, period_id: str, report_id: str) -> StoredReport | None:
        doc = await (await self._reports(period_id)).find_one({"_id": report_id})
        return _stored(doc) if doc else None

    async def latest(self, period_id: str) -> StoredReport | None:
        reports = await self._reports(period_id)
        doc = await reports.find_one({}, sort=[("version", -1)])
        return _stored(doc) if doc else None

    async def add_report(
        self,
        payload: ReportConsolidatedV2Payload,
        *,
        cause: str,
        content_hash: str,
        event_id: str,
        v1_event_id: str | None = None,
    ) -> None:
        reports = await self._reports(payload.period_id)
        try:
            await reports.insert_one(
                {
                    "_id": payload.report_id,
                    "version": payload.version,
                    "trigger": payload.trigger,
                    "cause": cause,
                    "content_hash": content_hash,
                    "event_id": event_id,
                    # Every event announcing the version (what the outbox's settling checks).
                    "event_ids": [event_id, *([v1_event_id] if v1_event_id else [])],
                    "v1_event_id": v1_event_id,
                    "consolidated_at": to_millis(payload.consolidated_at),
                    # JSON form: read back, it equals the published payload to the microsecond.
                    "payload": payload.model_dump(mode="json"),
                }
            )
        except DuplicateKeyError as error:
            # Which index refused the write is easier to ask than to parse from the message.
            if await reports.find_one({"_id": payload.report_id}, {"_id": 1}):
                raise ReportExists(payload.report_id) from error
            raise VersionTaken(f"{payload.period_id} v{payload.version}") from error

    async def reports(self, period_id: str) -> list[StoredReport]:
        reports = await self._reports(period_id)
        return [_stored(doc) for doc in await reports.find().sort("version", -1).to_list()]

    async def mark_closed(self, period_id: str, at: dt.datetime) -> None:
        await self._periods.update_one(
            {"_id": period_id}, {"$setOnInsert": {"closed_at": to_millis(at)}}, upsert=True
        )

    async def is_closed(self, period_id: str) -> bool:
        return await self._periods.find_one({"_id": period_id}, {"_id": 1}) is not None

    async def add_late_cause(self, cause: LateCause) -> None:
        with contextlib.suppress(DuplicateKeyError):
            await self._late.insert_one(
                {
                    "_id": cause.key,
                    "period_id": cause.period_id,
                    "correlation_id": str(cause.correlation_id),
                    "causation_id": str(cause.causation_id),
                }
            )

    async def late_causes(self) -> list[LateCause]:
        return [
            LateCause(
                period_id=doc["period_id"],
                key=doc["_id"],
                correlation_id=uuid.UUID(doc["correlation_id"]),
                causation_id=uuid.UUID(doc["causation_id"]),
            )
            async for doc in self._late.find({})
        ]

    async def forget_late_causes(self, keys: list[str]) -> None:
        await self._late.delete_many({"_id": {"$in": keys}})


def _stored(doc: dict[str, Any]) -> StoredReport:
    raw = doc["payload"]
    if "detail" in raw:
        return StoredReport(
            payload=ReportConsolidatedV2Payload.model_validate(raw),
            cause=doc["cause"],
            content_hash=doc["content_hash"],
            event_id=doc["event_id"],
            v1_event_id=doc.get("v1_event_id"),
        )
    # Recorded before v2: the v1 payload whole, announced by its v1 event alone.
    whole = ReportConsolidatedPayload.model_validate(raw)
    summary, detail = split(whole.model_copy(update={"content_hash": doc["content_hash"]}))
    return StoredReport(
        payload=summary,
        cause=doc["cause"],
        content_hash=doc["content_hash"],
        event_id=doc["event_id"],
        v1_event_id=doc["event_id"],
        inline_detail=detail,
    )


class TermsStore(abc.ABC):
    """Extensions and returns office staff decided, as their events told us."""

    @abc.abstractmethod
    async def record_extension(self, decided: ExtensionDecidedPayload) -> None:
        """Keep an approved extension (a later decision replaces an earlier one)."""

    @abc.abstractmethod
    async def record_return(self, reviewed: ReportReviewedPayload) -> None:
        """Keep a returned revision and its ``resubmit_by`` (once)."""

    @abc.abstractmethod
    async def record_exception(self, granted: FilingExceptionGrantedPayload) -> None:
        """Keep a filing exception (the latest granted replaces an earlier one)."""

    @abc.abstractmethod
    async def terms(self, period_id: str) -> dict[str, UnitTerms]:
        """By unit id, what was decided for the units of the period."""


class MongoTermsStore(TermsStore):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def record_extension(self, decided: ExtensionDecidedPayload) -> None:
        if decided.decision != "approved" or decided.new_due_at is None:
            return
        at = to_millis(decided.decided_at)
        # DuplicateKeyError: an approval decided later is there and stays.
        with contextlib.suppress(DuplicateKeyError):
            await self._db[EXTENSIONS + decided.period_id].update_one(
                {"_id": decided.unit_id, "decided_at": {"$lt": at}},
                {"$set": {"due_at": to_millis(decided.new_due_at), "decided_at": at}},
                upsert=True,
            )

    async def record_return(self, reviewed: ReportReviewedPayload) -> None:
        if reviewed.decision != "returned" or reviewed.resubmit_by is None:
            return
        with contextlib.suppress(DuplicateKeyError):  # redelivered
            await self._db[RETURNS + reviewed.period_id].insert_one(
                {
                    "_id": f"{reviewed.unit_id}|{reviewed.revision}",
                    "unit_id": reviewed.unit_id,
                    "revision": reviewed.revision,
                    "resubmit_by": to_millis(reviewed.resubmit_by),
                }
            )

    async def record_exception(self, granted: FilingExceptionGrantedPayload) -> None:
        at = to_millis(granted.granted_at)
        # As for extensions: a redelivery, or an older grant arriving late, changes nothing.
        with contextlib.suppress(DuplicateKeyError):
            await self._db[EXCEPTIONS + granted.period_id].update_one(
                {"_id": granted.unit_id, "granted_at": {"$lt": at}},
                {"$set": {"until": to_millis(granted.until), "granted_at": at}},
                upsert=True,
            )

    async def terms(self, period_id: str) -> dict[str, UnitTerms]:
        due = {d["_id"]: d["due_at"] async for d in self._db[EXTENSIONS + period_id].find({})}
        until = {d["_id"]: d["until"] async for d in self._db[EXCEPTIONS + period_id].find({})}
        returned: dict[str, dict[int, dt.datetime]] = {}
        async for doc in self._db[RETURNS + period_id].find({}):
            returned.setdefault(doc["unit_id"], {})[doc["revision"]] = doc["resubmit_by"]
        return {
            unit_id: UnitTerms(
                due_at=due.get(unit_id),
                returned=returned.get(unit_id, {}),
                exception_until=until.get(unit_id),
            )
            for unit_id in set(due) | set(returned) | set(until)
        }


def _projected(submission: SubmissionReceivedPayload) -> Document:
    return {
        "_id": submission.submission_id,
        "receipt_no": submission.receipt_no,
        "plan_id": submission.plan_id,
        "unit_id": submission.unit_id,
        "revision": submission.revision,
        "received_at": to_millis(submission.received_at),
        "tasks": [t.model_dump(mode="json") for t in submission.tasks],
    }
