"""The office's links to a consolidated version's files: what is kept of the event, and the
addresses built on consolidate's files route."""

from __future__ import annotations

import pytest

from contracts.events import DocumentFile, DocumentRef
from services.submissions.consolidated import record_of, version_of
from tests.support import notices

pytestmark = pytest.mark.unit

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def test_a_versions_files_are_linked_on_consolidates_route_with_their_names_escaped() -> None:
    document = DocumentRef(
        document_id="d-1",
        media_type=DOCX,
        filename="báo cáo.docx",
        sha256="0" * 64,
        files=[
            DocumentFile(media_type="application/pdf", filename="bc.pdf", sha256="1" * 64, size=3)
        ],
    )
    payload = notices.consolidated(1).payload.model_copy(
        update={"report_id": "bc/1", "document": document}
    )

    version = version_of(record_of(payload), "http://bao-cao.example:8003/")

    base = f"http://bao-cao.example:8003/api/v1/periods/{payload.period_id}/reports/bc%2F1/files"
    assert [(f.label, f.url) for f in version.files] == [
        ("Báo cáo (DOCX)", f"{base}/b%C3%A1o%20c%C3%A1o.docx"),
        ("Bản PDF", f"{base}/bc.pdf"),
    ]
    assert (version.version, version.trigger) == (1, payload.trigger)


def test_a_version_without_a_document_has_no_files_to_link() -> None:
    payload = notices.consolidated(2).payload  # version 2 of the fixture has no document
    assert version_of(record_of(payload), "http://x").files == []
