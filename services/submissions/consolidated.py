"""The period's consolidated reports as office staff open them from their period page.

Consolidate announces each version on ``baocao.report-consolidated.v2``; submissions keeps what
its pages need of it (the version and its files' names) in a small collection, one document per
version, so the page links the DOCX, XLSX and PDF without asking consolidate on every view.
The links lead to consolidate's files route on the address browsers reach it at
(``consolidate_url``): the sign-in cookie goes there too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from pymongo.asynchronous.database import AsyncDatabase

from contracts.events import DocumentRef
from contracts.report_v2 import ReportConsolidatedV2, ReportConsolidatedV2Payload
from services.common.mongo import Document

COLLECTION = "consolidated_reports"
SHOWN = 3
"""Versions a period page lists, latest first: the one in force and the ones before it."""

KIND_LABELS = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "Báo cáo (DOCX)",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "Phụ lục số liệu (XLSX)",
    "application/pdf": "Bản PDF",
}


@dataclass(frozen=True)
class FileLink:
    label: str
    filename: str
    url: str


@dataclass(frozen=True)
class ReportVersion:
    report_id: str
    version: int
    consolidated_at: dt.datetime
    trigger: str
    files: list[FileLink]


def files_of(document: DocumentRef | None) -> list[tuple[str, str]]:
    """(media type, file name) of each file of a version: the DOCX, then the others."""
    if document is None:
        return []
    return [(document.media_type, document.filename)] + [
        (f.media_type, f.filename) for f in document.files
    ]


def record_of(payload: ReportConsolidatedV2Payload) -> Document:
    return {
        "_id": payload.report_id,
        "period_id": payload.period_id,
        "version": payload.version,
        "trigger": payload.trigger,
        "consolidated_at": payload.consolidated_at,
        "files": [{"media_type": m, "filename": f} for m, f in files_of(payload.document)],
    }


def version_of(doc: Document, consolidate_url: str) -> ReportVersion:
    period = quote(doc["period_id"], safe="")
    base = f"{consolidate_url.rstrip('/')}/api/v1/periods/{period}/reports"
    return ReportVersion(
        report_id=doc["_id"],
        version=doc["version"],
        consolidated_at=doc["consolidated_at"],
        trigger=doc["trigger"],
        files=[
            FileLink(
                KIND_LABELS.get(f["media_type"], f["filename"]),
                f["filename"],
                f"{base}/{quote(doc['_id'], safe='')}/files/{quote(f['filename'], safe='')}",
            )
            for f in doc["files"]
        ],
    )


class ConsolidatedReports:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._collection = db[COLLECTION]

    async def record(self, payload: ReportConsolidatedV2Payload) -> None:
        # Keyed by the version's report id: a redelivery writes the same document again.
        doc = record_of(payload)
        await self._collection.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def latest(self, period_id: str, limit: int = SHOWN) -> Sequence[Document]:
        cursor = self._collection.find({"period_id": period_id}).sort("version", -1).limit(limit)
        return await cursor.to_list(None)


async def on_report_consolidated(
    event: ReportConsolidatedV2, *, reports: ConsolidatedReports
) -> None:
    await reports.record(event.payload)
