"""The files of a report version: rendered off the event loop, named, hashed.

python-docx and openpyxl are CPU-bound: they run in a worker thread. LibreOffice runs as its own
process (``pdf.convert``). A PDF that cannot be made is reported in ``missing``, never an error:
the DOCX and the XLSX are the report, the PDF a convenience.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass

from contracts.events import DocumentFile, DocumentRef, ReportConsolidatedPayload
from contracts.plan import Plan
from contracts.report_v2 import ReportSummary
from services.consolidate import content, docx_report, pdf, xlsx_annex

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderedFile:
    filename: str
    media_type: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Rendered:
    files: list[RenderedFile]
    """The DOCX first, then the XLSX annex, then the PDF when it was made."""
    missing: list[str]


def filenames(period_id: str, version: int) -> tuple[str, str, str]:
    """(DOCX, XLSX, PDF) names of a version: unique per period and version, safe in a URL."""
    stem = f"{period_id}-v{version}"
    return f"bao-cao-{stem}.docx", f"phu-luc-{stem}.xlsx", f"bao-cao-{stem}.pdf"


@dataclass(frozen=True)
class Beside:
    """Other periods' reports the document compares with (see ``content.build``)."""

    previous: ReportSummary | None = None
    """Its totals stand beside these: the summary is enough."""
    shorter: ReportConsolidatedPayload | None = None
    """Its units' figures are compared with these: the whole report."""


def _office_files(
    payload: ReportConsolidatedPayload, plan: Plan, draft: bool, beside: Beside
) -> tuple[bytes, bytes]:
    built = content.build(
        payload, plan, draft=draft, previous=beside.previous, shorter=beside.shorter
    )
    return (
        docx_report.render(built),
        xlsx_annex.render(payload, plan),
    )


async def render(
    payload: ReportConsolidatedPayload,
    plan: Plan,
    *,
    draft: bool,
    with_pdf: bool = True,
    beside: Beside | None = None,
) -> Rendered:
    docx_name, xlsx_name, pdf_name = filenames(payload.period_id, payload.version)
    docx_bytes, xlsx_bytes = await asyncio.to_thread(
        _office_files, payload, plan, draft, beside or Beside()
    )
    files = [
        RenderedFile(docx_name, docx_report.MEDIA_TYPE, docx_bytes),
        RenderedFile(xlsx_name, xlsx_annex.MEDIA_TYPE, xlsx_bytes),
    ]
    missing: list[str] = []
    if with_pdf:
        try:
            files.append(RenderedFile(pdf_name, pdf.MEDIA_TYPE, await pdf.convert(docx_bytes)))
        except pdf.PdfUnavailable as error:
            log.warning("%s: no PDF: %s", payload.report_id, error)
            missing.append(f"{pdf_name}: {error}")
    else:
        missing.append(f"{pdf_name}: PDF rendering is turned off")
    return Rendered(files, missing)


def file_url(public_url: str, period_id: str, report_id: str, filename: str) -> str:
    return (
        f"{public_url.rstrip('/')}/api/v1/periods/{period_id}/reports/{report_id}/files/{filename}"
    )


def reference(
    rendered: Rendered, *, public_url: str, period_id: str, report_id: str
) -> DocumentRef:
    main, *others = rendered.files
    return DocumentRef(
        document_id=f"{report_id}.{main.filename}",
        media_type=main.media_type,
        filename=main.filename,
        sha256=main.sha256,
        size=len(main.data),
        url=file_url(public_url, period_id, report_id, main.filename),
        files=[
            DocumentFile(
                filename=f.filename,
                media_type=f.media_type,
                sha256=f.sha256,
                size=len(f.data),
                url=file_url(public_url, period_id, report_id, f.filename),
            )
            for f in others
        ],
        missing=rendered.missing,
    )
