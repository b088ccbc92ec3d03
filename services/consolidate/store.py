"""Storage of the consolidate service: the submissions projection and the reports.

A report and the ``ReportConsolidated`` event announcing it are one document (outbox without
transactions, see ``services.common.outbox``).
"""

from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contracts.events import (
    ReportConsolidated,
    ReportConsolidatedPayload,
    SubmissionReceivedPayload,
    TaskReport,
)
from services.common.mongo import Document, to_millis
from services.common.outbox import outbox_entry
from services.consolidate.domain import SubmissionRow


class VersionTaken(Exception):
    """Another consolidation of the period recorded this version first."""


class ReportExists(Exception):
    """A report with this id is already recorded (its cause was handled before)."""


@dataclass(frozen=True)
class StoredReport:
    payload: ReportConsolidatedPayload
    cause: str
    published: bool


class ConsolidateStore(abc.ABC):
    @abc.abstractmethod
    async def add_submission(self, submission: SubmissionReceivedPayload) -> bool:
        """Project a submission; False if it was already there (a redelivery)."""

    @abc.abstractmethod
    async def submissions(self, period_id: str) -> list[SubmissionRow]:
        """Every revision received for the period."""

    @abc.abstractmethod
    async def report(self, report_id: str) -> StoredReport | None: ...

    @abc.abstractmethod
    async def latest_version(self, period_id: str) -> int:
        """The highest report version of the period, 0 when there is none."""

    @abc.abstractmethod
    async def add_report(self, event: ReportConsolidated, *, cause: str) -> None:
        """Record the report with its event in one write.

        Raises :class:`ReportExists` or :class:`VersionTaken`.
        """

    @abc.abstractmethod
    async def reports(self, period_id: str) -> list[StoredReport]:
        """The period's reports, latest version first."""


class MongoConsolidateStore(ConsolidateStore):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._submissions: AsyncCollection[Document] = db["submissions"]
        self.reports_collection: AsyncCollection[Document] = db["reports"]

    async def create_indexes(self) -> None:
        await self._submissions.create_index([("period_id", 1), ("unit_id", 1), ("revision", 1)])
        # Two consolidations racing for the same version: the second write fails and retries.
        await self.reports_collection.create_index([("period_id", 1), ("version", 1)], unique=True)

    async def add_submission(self, submission: SubmissionReceivedPayload) -> bool:
        result = await self._submissions.update_one(
            {"_id": submission.submission_id},
            {
                "$setOnInsert": {
                    "receipt_no": submission.receipt_no,
                    "plan_id": submission.plan_id,
                    "period_id": submission.period_id,
                    "unit_id": submission.unit_id,
                    "revision": submission.revision,
                    "received_at": to_millis(submission.received_at),
                    "tasks": [t.model_dump(mode="json") for t in submission.tasks],
                }
            },
            upsert=True,
        )
        return result.upserted_id is not None

    async def submissions(self, period_id: str) -> list[SubmissionRow]:
        docs = await self._submissions.find({"period_id": period_id}).to_list()
        return [
            SubmissionRow(
                submission_id=doc["_id"],
                receipt_no=doc["receipt_no"],
                unit_id=doc["unit_id"],
                revision=doc["revision"],
                received_at=doc["received_at"].astimezone(dt.UTC),
                tasks=tuple(TaskReport.model_validate(t) for t in doc["tasks"]),
            )
            for doc in docs
        ]

    async def report(self, report_id: str) -> StoredReport | None:
        doc = await self.reports_collection.find_one({"_id": report_id})
        return _stored(doc) if doc else None

    async def latest_version(self, period_id: str) -> int:
        doc = await self.reports_collection.find_one(
            {"period_id": period_id}, sort=[("version", -1)], projection={"version": 1}
        )
        return int(doc["version"]) if doc else 0

    async def add_report(self, event: ReportConsolidated, *, cause: str) -> None:
        payload = event.payload
        try:
            await self.reports_collection.insert_one(
                {
                    "_id": payload.report_id,
                    "plan_id": payload.plan_id,
                    "period_id": payload.period_id,
                    "version": payload.version,
                    "trigger": payload.trigger,
                    "cause": cause,
                    "consolidated_at": to_millis(payload.consolidated_at),
                    # JSON form: read back, it equals the published payload to the microsecond.
                    "payload": payload.model_dump(mode="json"),
                    "outbox": outbox_entry(event),
                }
            )
        except DuplicateKeyError as error:
            # Which index refused the write is easier to ask than to parse from the message.
            if await self.reports_collection.count_documents({"_id": payload.report_id}):
                raise ReportExists(payload.report_id) from error
            raise VersionTaken(f"{payload.period_id} v{payload.version}") from error

    async def reports(self, period_id: str) -> list[StoredReport]:
        docs = (
            await self.reports_collection.find({"period_id": period_id})
            .sort("version", -1)
            .to_list()
        )
        return [_stored(doc) for doc in docs]


def _stored(doc: dict[str, Any]) -> StoredReport:
    return StoredReport(
        payload=ReportConsolidatedPayload.model_validate(doc["payload"]),
        cause=doc["cause"],
        published=not doc["outbox"]["pending"],
    )
