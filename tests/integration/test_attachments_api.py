"""Attachments through the submissions app, in-process, on the real FerretDB and Kafka.

Limits are small here (a file 300 kB, a unit's period 700 kB) so that the cases over them are
quick; the code paths are those of the defaults (20 MB, 50 MB).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from contracts.events import SubmissionReceived
from services.common.auth import Role
from services.common.clock import FixedClock
from services.common.mongo import Document
from services.submissions.app import build_app
from services.submissions.attachment_store import bucket_name
from services.submissions.attachments import MediaType
from services.submissions.attachments_api import FORM_OVERHEAD
from services.submissions.config import SubmissionsSettings
from tests.conftest import Servers
from tests.support.attachments import Pulled, docx_file, field_part, form, pdf, png, xlsx_file
from tests.support.auth import bearer
from tests.support.mongo import outbox_view
from tests.support.submissions import SEED, SEED_OPEN_AT, SEED_PERIOD, report

pytestmark = pytest.mark.integration

OWN, OTHER = "xa-bo-y", "xa-dak-ang"
MAX_FILE, MAX_UNIT = 300_000, 700_000
CHUNK = 16 * 1024
OFFICER = bearer(Role.OFFICER, OWN, subject="canbo-bo-y")
OTHER_OFFICER = bearer(Role.OFFICER, OTHER, subject="canbo-dak-ang")
OFFICE = bearer(Role.OFFICE, "phong-vhtt", subject="tonghop")
ADMIN = bearer(Role.ADMIN, subject="quantri")
BASE = f"/api/v1/periods/{SEED_PERIOD}/units/{OWN}/attachments"
MARKER = b"DAU-HIEU-NOI-DUNG-TEP"
"""Inside the uploaded PDFs: must never appear in an event."""


@dataclass
class Service:
    app: FastAPI
    http: httpx.AsyncClient

    @property
    def db(self) -> AsyncDatabase[Document]:
        db: AsyncDatabase[Document] = self.app.state.runtime.db
        return db

    async def upload(
        self,
        content: bytes,
        filename: str = "bao-cao.pdf",
        *,
        headers: dict[str, str] | None = None,
        path: str = BASE,
    ) -> httpx.Response:
        body, content_type = form(content, filename)
        return await self.http.post(
            path, content=body, headers={**(headers or OFFICER), "Content-Type": content_type}
        )

    async def stored_chunks(self, unit_id: str = OWN) -> int:
        return await self.db[bucket_name(SEED_PERIOD, unit_id) + ".chunks"].count_documents({})

    async def audit(self, action: str) -> list[dict[str, Any]]:
        trail = (await self.http.get("/api/v1/audit", headers=ADMIN)).json()
        return [e for e in trail if e["action"] == action]


@pytest.fixture
async def service(servers: Servers, namespace: str) -> AsyncIterator[Service]:
    settings = SubmissionsSettings(
        namespace=namespace,
        kafka_bootstrap=servers.kafka_bootstrap,
        mongo_uri=servers.mongo_uri,
        plans=str(SEED),
        max_attachment_bytes=MAX_FILE,
        max_report_attachment_bytes=MAX_UNIT,
    )
    app = build_app(settings, clock=FixedClock(SEED_OPEN_AT))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://submissions"
        ) as http,
    ):
        service = Service(app, http)
        try:
            yield service
        finally:
            await service.db.client.drop_database(service.db.name)


def padded_pdf(size: int) -> bytes:
    """A PDF of exactly ``size`` bytes (what follows ``%%EOF`` is ignored by readers)."""
    content = pdf() + b"%" + MARKER
    return content + b"%" * (size - len(content))


async def test_upload_list_download_round_trip_keeps_every_byte(service: Service) -> None:
    content = padded_pdf(120_000)
    uploaded = await service.upload(content, "Báo cáo đã ký.pdf")
    assert uploaded.status_code == 201, uploaded.text
    stored = uploaded.json()
    assert stored["sha256"] == hashlib.sha256(content).hexdigest()
    assert stored["size"] == len(content)
    assert stored["media_type"] == "application/pdf"
    assert stored["filename"] == "Báo cáo đã ký.pdf"
    assert stored["state"] == "draft"
    assert stored["uploaded_by"] == "canbo-bo-y"
    assert uploaded.headers["location"] == stored["download_url"]

    for who in (OFFICER, OFFICE):  # the unit's officer, and the office that reads all
        listed = await service.http.get(BASE, headers=who)
        assert listed.status_code == 200
        assert [a["attachment_id"] for a in listed.json()["attachments"]] == [
            stored["attachment_id"]
        ]
        assert listed.json()["total_bytes"] == len(content)
        download = await service.http.get(stored["download_url"], headers=who)
        assert download.status_code == 200
        assert hashlib.sha256(download.content).hexdigest() == stored["sha256"]
        assert download.content == content
        assert download.headers["content-type"] == "application/pdf"
        assert download.headers["content-length"] == str(len(content))
        assert download.headers["x-content-type-options"] == "nosniff"
        assert download.headers["content-disposition"] == (
            "attachment; filename=\"Bao cao da ky.pdf\"; filename*=UTF-8''"
            "B%C3%A1o%20c%C3%A1o%20%C4%91%C3%A3%20k%C3%BD.pdf"
        )
    [added] = await service.audit("attachment_added")
    assert added["details"]["attachment_id"] == stored["attachment_id"]
    assert added["details"]["size"] == len(content)


@pytest.mark.parametrize(
    ("make", "filename", "media_type"),
    [
        (docx_file, "bao-cao.docx", MediaType.DOCX),
        (xlsx_file, "so-lieu.xlsx", MediaType.XLSX),
        (png, "anh-chup", MediaType.PNG),  # no extension: the type's is added
    ],
)
async def test_office_documents_and_images_are_typed_by_content(
    service: Service, make: Any, filename: str, media_type: MediaType
) -> None:
    content = make()
    uploaded = await service.upload(content, filename)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["media_type"] == media_type.value
    assert uploaded.json()["filename"].endswith(media_type.extension)
    download = await service.http.get(uploaded.json()["download_url"], headers=OFFICER)
    assert download.content == content


async def test_another_units_officer_gets_404_everywhere_and_is_audited(service: Service) -> None:
    uploaded = await service.upload(pdf())
    attachment_id = uploaded.json()["attachment_id"]
    body, content_type = form(pdf())
    headers = {**OTHER_OFFICER, "Content-Type": content_type}
    answers = [
        await service.http.get(BASE, headers=OTHER_OFFICER),
        await service.http.get(f"{BASE}/{attachment_id}", headers=OTHER_OFFICER),
        await service.http.delete(f"{BASE}/{attachment_id}", headers=OTHER_OFFICER),
        await service.http.post(BASE, content=body, headers=headers),
    ]
    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert all(a.json()["code"] == "not_found" for a in answers)
    assert all(MARKER.decode() not in a.text for a in answers)
    # The attachment id is not found under the other unit's own path either.
    theirs = f"/api/v1/periods/{SEED_PERIOD}/units/{OTHER}/attachments/{attachment_id}"
    assert (await service.http.get(theirs, headers=OTHER_OFFICER)).status_code == 404
    denied = await service.audit("denied")
    assert {(e["method"], e["actor"], e["unit_id"]) for e in denied} == {
        (method, "canbo-dak-ang", OWN) for method in ("GET", "DELETE", "POST")
    }
    # The office reads but never files: 403 for an upload, audited too.
    office = await service.http.post(
        BASE, content=body, headers={**OFFICE, "Content-Type": content_type}
    )
    assert office.status_code == 403
    assert (await service.stored_chunks()) == 1  # only the officer's own file
    unsigned = await service.http.get(BASE)
    assert unsigned.status_code == 401


async def test_a_declared_length_over_the_limit_is_413_before_a_byte_is_read(
    service: Service,
) -> None:
    body, content_type = form(padded_pdf(MAX_FILE + FORM_OVERHEAD + 1))
    pulled = Pulled(body, CHUNK)
    response = await service.http.post(
        BASE,
        content=pulled,
        headers={**OFFICER, "Content-Type": content_type, "Content-Length": str(len(body))},
    )
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "payload_too_large"
    assert response.json()["message"] == "Nội dung gửi lên quá lớn (tối đa 0,3 MB)."
    assert pulled.pulled == 0
    assert await service.stored_chunks() == 0


@pytest.mark.parametrize("size", [MAX_FILE + 1, 5 * MAX_FILE])
async def test_a_chunked_file_over_the_limit_is_413_as_soon_as_it_passes(
    service: Service, size: int
) -> None:
    body, content_type = form(padded_pdf(size))
    pulled = Pulled(body, CHUNK)
    request = service.http.build_request(
        "POST", BASE, content=pulled, headers={**OFFICER, "Content-Type": content_type}
    )
    assert request.headers["transfer-encoding"] == "chunked"
    response = await service.http.send(request)
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "attachment_too_large"
    assert "0,3 MB" in response.json()["message"]
    # The form's headers, the limit, and the chunk that passed it: not a chunk more.
    assert pulled.pulled <= MAX_FILE + 512 + CHUNK
    assert await service.stored_chunks() == 0  # what was written of it is gone
    assert (await service.http.get(BASE, headers=OFFICER)).json()["attachments"] == []


async def test_a_chunked_form_over_the_request_limit_is_413_whatever_it_carries(
    service: Service,
) -> None:
    """A large field before the file: the file's own limit never trips, the request's does."""
    boundary = "b0undary"
    filler = field_part("ghi-chu", "x" * (MAX_FILE + FORM_OVERHEAD), boundary)
    body, content_type = form(pdf(), boundary=boundary)
    pulled = Pulled(filler + body, CHUNK)
    response = await service.http.post(
        BASE, content=pulled, headers={**OFFICER, "Content-Type": content_type}
    )
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "payload_too_large"
    assert MAX_FILE + FORM_OVERHEAD < pulled.pulled <= MAX_FILE + FORM_OVERHEAD + CHUNK
    assert await service.stored_chunks() == 0


async def test_a_file_at_the_limit_is_taken(service: Service) -> None:
    uploaded = await service.upload(padded_pdf(MAX_FILE))
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["size"] == MAX_FILE


async def test_what_a_unit_attaches_for_a_period_is_limited_in_total(service: Service) -> None:
    for _ in range(2):
        assert (await service.upload(padded_pdf(280_000))).status_code == 201
    third = await service.upload(padded_pdf(280_000))
    assert third.status_code == 413, third.text
    assert third.json()["code"] == "attachments_total_too_large"
    assert "0,7 MB" in third.json()["message"]
    listed = (await service.http.get(BASE, headers=OFFICER)).json()
    assert len(listed["attachments"]) == 2
    assert listed["total_bytes"] == 560_000 <= listed["max_total_bytes"] == MAX_UNIT
    # Room for a small one remains; deleting a draft makes room again.
    assert (await service.upload(padded_pdf(100_000))).status_code == 201
    first = listed["attachments"][0]["download_url"]
    assert (await service.http.delete(first, headers=OFFICER)).status_code == 204
    assert (await service.upload(padded_pdf(280_000))).status_code == 201


async def test_content_decides_the_type_not_the_name(service: Service) -> None:
    mismatched = await service.upload(png(), "scan.pdf")
    assert mismatched.status_code == 415, mismatched.text
    assert mismatched.json()["code"] == "unsupported_file_type"
    assert mismatched.json()["details"] == [
        {"field": "file", "claimed": "application/pdf", "found": "PNG"}
    ]
    executable = await service.upload(b"MZ\x90\x00" + b"\x00" * 5000, "bao-cao.docx")
    assert executable.status_code == 415
    html = await service.upload(b"<html><script>alert(1)</script></html>", "bao-cao")
    assert html.status_code == 415
    assert "PDF, DOCX, XLSX, JPEG hoặc PNG" in html.json()["message"]
    assert await service.stored_chunks() == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd.pdf", "passwd.pdf"),
        ("..\\..\\Windows\\System32\\drivers\\etc\\hosts.pdf", "hosts.pdf"),
        ("C:\\Users\\Hà\\Desktop\\Báo cáo.PDF", "Báo cáo.pdf"),
        ("bao\x00cao\x1b[2J\x07.pdf", "baocao[2J.pdf"),
        ("x" * 500 + ".pdf", "x" * 116 + ".pdf"),
        (
            unicodedata.normalize("NFD", "Báo cáo tổng hợp – Đợt 1.pdf"),
            "Báo cáo tổng hợp – Đợt 1.pdf",
        ),
        ("", "tep-dinh-kem.pdf"),
    ],
    ids=["dot-dot", "windows-relative", "windows-absolute", "control", "long", "nfd", "empty"],
)
async def test_a_hostile_name_is_neutralised(service: Service, raw: str, expected: str) -> None:
    uploaded = await service.upload(pdf(), raw)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["filename"] == expected
    listed = (await service.http.get(BASE, headers=OFFICER)).json()["attachments"]
    assert [a["filename"] for a in listed] == [expected]
    download = await service.http.get(uploaded.json()["download_url"], headers=OFFICER)
    disposition = download.headers["content-disposition"]
    assert "/" not in disposition.split("filename*=")[0] and "\\" not in disposition


async def test_what_is_not_a_one_file_form_is_refused(service: Service) -> None:
    as_json = await service.http.post(BASE, json={"file": "x"}, headers=OFFICER)
    assert as_json.status_code == 415
    assert as_json.json()["code"] == "unsupported_media_type"
    body, content_type = form(pdf(), field="tep")
    wrong_field = await service.http.post(
        BASE, content=body, headers={**OFFICER, "Content-Type": content_type}
    )
    assert wrong_field.status_code == 422
    assert wrong_field.json()["code"] == "invalid_form"
    empty = await service.upload(b"")
    assert empty.status_code == 422
    assert empty.json()["code"] == "empty_file"
    body, content_type = form(pdf())
    cut = await service.http.post(
        BASE, content=body[:-40], headers={**OFFICER, "Content-Type": content_type}
    )
    assert cut.status_code == 400
    assert cut.json()["code"] == "malformed_form"
    assert await service.stored_chunks() == 0


async def test_a_filed_report_carries_references_never_bytes(service: Service) -> None:
    content = padded_pdf(150_000)
    scan = (await service.upload(content, "Bản ký.pdf")).json()
    sheet = (await service.upload(xlsx_file(), "so-lieu.xlsx")).json()
    filed = await service.http.post(
        "/api/v1/submissions",
        json=report(
            unit_id=OWN, attachments=[scan["attachment_id"], sheet["attachment_id"]]
        ).model_dump(mode="json"),
        headers=OFFICER,
    )
    assert filed.status_code == 201, filed.text
    submission_id = filed.json()["submission_id"]

    [entry] = [
        e
        for e in await outbox_view(service.db)
        if json.loads(e["event_json"])["payload"].get("submission_id") == submission_id
    ]
    event = SubmissionReceived.model_validate_json(entry["event_json"])
    assert [a.model_dump() for a in event.payload.attachments] == [
        {
            "attachment_id": scan["attachment_id"],
            "filename": "Bản ký.pdf",
            "media_type": "application/pdf",
            "size": len(content),
            "sha256": hashlib.sha256(content).hexdigest(),
        },
        {
            "attachment_id": sheet["attachment_id"],
            "filename": "so-lieu.xlsx",
            "media_type": MediaType.XLSX.value,
            "size": sheet["size"],
            "sha256": sheet["sha256"],
        },
    ]
    assert MARKER.decode() not in entry["event_json"]
    assert len(entry["event_json"]) < 5_000

    # Filed: kept as filed.
    listed = (await service.http.get(BASE, headers=OFFICER)).json()["attachments"]
    assert {a["state"] for a in listed} == {"submitted"}
    kept = await service.http.delete(scan["download_url"], headers=OFFICER)
    assert kept.status_code == 409
    assert kept.json()["code"] == "attachment_filed"


async def test_a_report_may_attach_only_the_units_own_files_of_the_period(
    service: Service,
) -> None:
    theirs = await service.upload(
        pdf(),
        headers=OTHER_OFFICER,
        path=f"/api/v1/periods/{SEED_PERIOD}/units/{OTHER}/attachments",
    )
    assert theirs.status_code == 201, theirs.text
    for attachment_id in (theirs.json()["attachment_id"], "khong-co"):
        filed = await service.http.post(
            "/api/v1/submissions",
            json=report(unit_id=OWN, attachments=[attachment_id]).model_dump(mode="json"),
            headers=OFFICER,
        )
        assert filed.status_code == 422, filed.text
        assert filed.json()["code"] == "unknown_attachment"
        assert filed.json()["details"] == [{"field": "attachments", "attachment_id": attachment_id}]
    # The other unit's draft is untouched: still theirs to delete.
    deleted = await service.http.delete(theirs.json()["download_url"], headers=OTHER_OFFICER)
    assert deleted.status_code == 204


async def test_a_draft_can_be_deleted_and_is_then_gone(service: Service) -> None:
    uploaded = (await service.upload(pdf())).json()
    deleted = await service.http.delete(uploaded["download_url"], headers=OFFICER)
    assert deleted.status_code == 204
    assert (await service.http.get(uploaded["download_url"], headers=OFFICER)).status_code == 404
    again = await service.http.delete(uploaded["download_url"], headers=OFFICER)
    assert again.status_code == 404
    assert again.json()["code"] == "attachment_not_found"
    assert await service.stored_chunks() == 0
    [removed] = await service.audit("attachment_removed")
    assert removed["details"]["attachment_id"] == uploaded["attachment_id"]


async def test_an_unknown_period_or_unit_is_404(service: Service) -> None:
    unknown_period = "/api/v1/periods/kh-nq35-ngoc-hoi.1990.khong-co/units/xa-bo-y/attachments"
    assert (await service.http.get(unknown_period, headers=OFFICE)).status_code == 404
    unknown_unit = f"/api/v1/periods/{SEED_PERIOD}/units/khong-co/attachments"
    answer = await service.http.get(unknown_unit, headers=OFFICE)
    assert answer.status_code == 404
    assert answer.json()["code"] == "unknown_unit"
