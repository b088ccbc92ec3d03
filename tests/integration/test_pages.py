"""The pages on the submissions service against the real FerretDB and Kafka (in-process, fresh
namespace): who reaches which page, CSRF on every form, the sign-in page's throttling, and a
report filed through the form (errors at their fields, a draft, the receipt, one filing per
rendered form)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts

from contracts.events import DocumentFile, DocumentRef
from contracts.report_v2 import ReportConsolidatedV2
from contracts.topics import REPORT_CONSOLIDATED_V2
from services.common.auth import Role, load_public_key
from services.common.feed_tokens import verify_feed_token
from services.common.kafka import Names
from services.consolidate import docx_report, xlsx_annex
from services.consolidate import pdf as consolidate_pdf
from services.consolidate import web as consolidate_web
from services.submissions.pages.base import PageRoute
from tests.conftest import Servers
from tests.support import attachments, notices
from tests.support.auth import bearer, key_files
from tests.support.portal import (
    ADMIN,
    OFFICE,
    OFFICER,
    OTHER,
    OTHER_OFFICER,
    PASSWORD,
    UNIT,
    Portal,
    hidden,
    running_portal,
)
from tests.support.submissions import SEED_OPEN_AT, SEED_PERIOD, report
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration

TASK = "ii-1-1-tuyen-truyen-giao-duc"
FORM = f"/periods/{SEED_PERIOD}/report"


@pytest.fixture
async def portal(servers: Servers, namespace: str) -> AsyncIterator[Portal]:
    async with running_portal(
        servers, namespace, [OFFICER, OTHER_OFFICER, OFFICE, ADMIN], address="10.0.0.9"
    ) as running:
        yield running


def form_values(results: str = "Tổ chức 4 buổi quán triệt.", count: str = "4") -> dict[str, str]:
    return {
        f"{TASK}.status": "completed",
        f"{TASK}.results": results,
        f"{TASK}.ind.so-buoi-tuyen-truyen": count,
        "submitter_name": "Nguyễn Thị Hà",
    }


async def post_form(
    http: httpx.AsyncClient, action: str, values: dict[str, str], **extra: str
) -> httpx.Response:
    page = await http.get(FORM)
    data = {
        "csrf_token": hidden(page, "csrf_token"),
        "idempotency_key": hidden(page, "idempotency_key"),
        "action": action,
        **values,
        **extra,
    }
    return await http.post(FORM, data=data)


# --- one address, sign-in, CSRF ---------------------------------------------------------


async def test_the_one_address_leads_to_sign_in_then_to_the_dashboard(portal: Portal) -> None:
    async with portal.client() as http:
        first = await http.get("/")
        signed = await portal.sign_in_page(http, "canbo")
        after = await http.get("/")
        dashboard = await http.get("/dashboard")

    assert (first.status_code, first.headers["location"]) == (303, "/sign-in")
    assert (signed.status_code, signed.headers["location"]) == (303, "/dashboard")
    assert after.headers["location"] == "/dashboard"
    assert dashboard.status_code == 200
    assert '<html lang="vi">' in dashboard.text
    assert "Ủy ban nhân dân xã Bờ Y" in dashboard.text
    assert f'href="{FORM}"' in dashboard.text


async def test_an_officers_dashboard_offers_the_units_calendar_feed(portal: Portal) -> None:
    async with portal.client() as http:
        await portal.sign_in_page(http, "canbo")
        dashboard = await http.get("/dashboard")

    assert "Lịch hạn báo cáo" in dashboard.text
    found = re.search(
        r'value="([^"]+/api/v1/units/xa-bo-y/calendar\.ics\?token=([^"]+))"', dashboard.text
    )
    assert found, dashboard.text[-2000:]
    grant = verify_feed_token(
        load_public_key(key_files()[1]), html.unescape(found.group(2)), portal.clock.now()
    )
    assert grant.unit_id == "xa-bo-y"


async def test_a_page_asked_for_before_signing_in_is_reached_after_it(portal: Portal) -> None:
    async with portal.client() as http:
        asked = await http.get(FORM)
        page = await http.get(asked.headers["location"])
        signed = await http.post(
            "/sign-in",
            data={
                "username": "canbo",
                "password": PASSWORD,
                "csrf_token": hidden(page, "csrf_token"),
                "next": hidden(page, "next"),
            },
        )

    assert asked.status_code == 303
    assert signed.headers["location"] == FORM


async def test_the_sign_in_form_needs_its_own_csrf_token(portal: Portal) -> None:
    async with portal.client() as http:
        await http.get("/sign-in")  # the cookie half is set; the form half is not sent
        forged = await http.post("/sign-in", data={"username": "canbo", "password": PASSWORD})
        me = await http.get("/dashboard")

    assert forged.status_code == 403
    assert "Biểu mẫu đăng nhập đã hết hạn" in forged.text
    assert "baocao_session" not in forged.headers.get("set-cookie", "")
    assert me.status_code == 303


async def test_wrong_passwords_then_the_sign_in_page_answers_429_in_vietnamese(
    portal: Portal,
) -> None:
    async with portal.client() as http:
        wrong = [await portal.sign_in_page(http, "canbo", "sai-mat-khau-123") for _ in range(5)]
        throttled = await portal.sign_in_page(http, "canbo")

    assert [w.status_code for w in wrong] == [401] * 5
    assert "Tên đăng nhập hoặc mật khẩu không đúng." in wrong[0].text
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) > 0
    assert "Đăng nhập sai quá nhiều lần; vui lòng thử lại sau" in throttled.text
    assert throttled.headers["content-type"].startswith("text/html")


async def test_a_form_post_without_the_sessions_csrf_token_is_refused(portal: Portal) -> None:
    async with portal.client() as http:
        await portal.sign_in_page(http, "canbo")
        missing = await post_form(http, "submit", form_values(), csrf_token="")
        wrong = await post_form(http, "submit", form_values(), csrf_token="x" * 32)
        draft = await post_form(http, "draft", form_values(), csrf_token="")
        dashboard = await http.get("/dashboard")

    for refused in (missing, wrong, draft):
        assert refused.status_code == 403
        assert "mã xác thực biểu mẫu" in refused.text
    assert "Chưa gửi" in dashboard.text  # nothing filed, no draft
    assert "bản nháp" not in dashboard.text


async def test_sign_out_ends_the_session(portal: Portal) -> None:
    async with portal.client() as http:
        await portal.sign_in_page(http, "canbo")
        page = await http.get("/dashboard")
        out = await http.post("/sign-out", data={"csrf_token": hidden(page, "csrf_token")})
        after = await http.get("/dashboard")

    assert (out.status_code, out.headers["location"]) == (303, "/sign-in?signed_out=1")
    assert after.status_code == 303


# --- the report form ----------------------------------------------------------------------


async def test_a_report_filed_through_the_form(portal: Portal) -> None:
    async with portal.client() as http:
        await portal.sign_in_page(http, "canbo")
        invalid = await post_form(http, "submit", form_values(results="", count="2,5"))
        saved = await post_form(http, "draft", form_values(count="2,5"))
        resumed = await http.get(saved.headers["location"])
        data = {
            "csrf_token": hidden(resumed, "csrf_token"),
            "idempotency_key": hidden(resumed, "idempotency_key"),
            "action": "submit",
            **form_values(),
        }
        filed = await http.post(FORM, data=data)
        again = await http.post(FORM, data=data)  # a double click: the same rendered form
        receipt = await http.get(filed.headers["location"])
        after = await http.get(FORM)

    assert invalid.status_code == 422
    assert 'id="error-summary"' in invalid.text
    assert 'href="#f-ii-1-1-tuyen-truyen-giao-duc--results"' in invalid.text
    results_error = 'id="f-ii-1-1-tuyen-truyen-giao-duc--results-error"'
    assert results_error in invalid.text
    assert "Vui lòng nhập kết quả thực hiện." in invalid.text
    assert "Nhập một số nguyên không âm (ví dụ 4); đã nhập 2,5." in invalid.text
    assert 'aria-describedby="f-ii-1-1-tuyen-truyen-giao-duc--results-error"' in invalid.text

    assert saved.headers["location"] == f"{FORM}?saved=1"
    assert "Đã lưu nháp." in resumed.text
    assert 'value="2,5"' in resumed.text

    assert filed.status_code == 303
    assert again.headers["location"] == filed.headers["location"]
    assert receipt.status_code == 200
    assert re.search(r"Số tiếp nhận: <strong>TN-2027-\d{6}</strong>", receipt.text)
    assert "Đúng hạn" in receipt.text
    assert "10:00 ngày 01/06/2027" in receipt.text  # 03:00 UTC, in the plan's time zone
    assert "Tuyên truyền, giáo dục thực hiện Nghị quyết 35-NQ/TW" in receipt.text
    assert "Số buổi tuyên truyền, quán triệt: 4" in receipt.text
    # The draft is gone; the form now starts from the version filed.
    assert "bản nháp" not in after.text
    assert "Đơn vị đã gửi báo cáo kỳ này (lần 1" in after.text


async def test_filing_is_the_apis_own_path_so_its_refusals_show_on_the_form(portal: Portal) -> None:
    portal.clock.advance(SEED_OPEN_AT.replace(month=7, day=20) - SEED_OPEN_AT)  # after the lock
    async with portal.client() as http:
        await portal.sign_in_page(http, "canbo")
        refused = await post_form(http, "submit", form_values())

    assert refused.status_code == 409
    assert "đã kết thúc nhận báo cáo" in refused.text


async def test_the_forms_draft_through_the_json_api(portal: Portal) -> None:
    api = bearer(Role.OFFICER, UNIT, subject="canbo")
    path = f"/api/v1/periods/{SEED_PERIOD}/units/{UNIT}/draft"
    async with portal.client() as http:
        none = await http.get(path, headers=api)
        saved = await http.put(path, json={"values": form_values(count="2,5")}, headers=api)
        await portal.sign_in_page(http, "canbo")
        resumed = await http.get(FORM)  # the page resumes what the API saved
        await post_form(http, "draft", form_values(results="Sửa trên trang."))
        from_page = await http.get(path, headers=api)  # and the API reads what the page saved
        filed = await post_form(http, "submit", form_values())
        after_filing = await http.get(path, headers=api)
        await http.put(path, json={"values": form_values()}, headers=api)
        discarded = await http.delete(path, headers=api)
        after_delete = await http.get(path, headers=api)
        not_json = await http.put(path, json={"values": {"a": 1}}, headers=api)

    assert (none.status_code, none.json()["code"]) == (404, "draft_not_found")
    assert saved.status_code == 200, saved.text
    assert saved.json()["values"][f"{TASK}.ind.so-buoi-tuyen-truyen"] == "2,5"
    assert saved.json()["saved_by"] == "canbo"
    assert 'value="2,5"' in resumed.text and "bản nháp" in resumed.text
    assert from_page.json()["values"][f"{TASK}.results"] == "Sửa trên trang."
    assert filed.status_code == 303
    assert after_filing.status_code == 404  # filing deletes the draft, as on the page
    assert discarded.status_code == 204
    assert after_delete.status_code == 404
    assert not_json.status_code == 422  # values are text, as the form sends them


# --- who reaches which page ---------------------------------------------------------------


PAGES: dict[tuple[str, str], set[str]] = {
    ("GET", "/"): {"anonymous", "canbo", "tonghop", "quantri"},
    ("GET", "/sign-in"): {"anonymous", "canbo", "tonghop", "quantri"},
    ("POST", "/sign-in"): {"anonymous", "canbo", "tonghop", "quantri"},
    ("POST", "/sign-out"): {"canbo", "tonghop", "quantri"},
    ("GET", "/dashboard"): {"canbo", "tonghop", "quantri"},
    ("GET", "/periods/{period_id}/report"): {"canbo"},
    ("POST", "/periods/{period_id}/report"): {"canbo"},
    ("GET", "/periods/{period_id}/submissions/{submission_id}/receipt"): {
        "canbo",
        "tonghop",
        "quantri",
    },
    ("GET", "/periods/{period_id}/status"): {"tonghop", "quantri"},
    ("GET", "/periods/{period_id}/units/{unit_id}"): {"canbo", "tonghop", "quantri"},
    ("GET", "/periods/{period_id}/units/{unit_id}/diff"): {"canbo", "tonghop", "quantri"},
    ("POST", "/periods/{period_id}/units/{unit_id}/review"): {"tonghop", "quantri"},
    ("POST", "/periods/{period_id}/units/{unit_id}/exception"): {"tonghop", "quantri"},
    ("POST", "/periods/{period_id}/units/{unit_id}/extension-request"): {"canbo"},
    ("POST", "/periods/{period_id}/units/{unit_id}/extension-decision"): {"tonghop", "quantri"},
    ("GET", "/admin/accounts"): {"quantri"},
    ("POST", "/admin/accounts"): {"quantri"},
    ("POST", "/admin/accounts/{username}"): {"quantri"},
    ("GET", "/admin/tokens"): {"quantri"},
    ("POST", "/admin/tokens"): {"quantri"},
    ("POST", "/admin/tokens/{token_id}/revoke"): {"quantri"},
    ("GET", "/admin/audit"): {"quantri"},
    ("GET", "/admin/contacts"): {"quantri"},
}
"""Who each page is for; the officer ``canbo`` reaches their own unit's pages only."""


def _names_other_unit(template: str) -> bool:
    """The path names the other unit's things (its report or the unit itself)."""
    return "{submission_id}" in template or "{unit_id}" in template


def page_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        (method, route.path or "")
        for route in iter_route_contexts(app.routes)
        if isinstance(route.original_route, PageRoute)
        for method in (route.methods or set()) - {"HEAD"}
    }


async def test_every_page_is_classified_and_each_person_reaches_only_theirs(portal: Portal) -> None:
    assert page_routes(portal.app) == set(PAGES), "decide who may open new pages, in PAGES"
    async with portal.client() as http:
        await portal.sign_in_page(http, "canbo-khac")
        filed = await post_form(http, "submit", form_values(results="Bí mật của xã Đăk Ang."))
        other_receipt = filed.headers["location"].split("/")[-2]
    ids = {
        "period_id": SEED_PERIOD,
        "unit_id": OTHER,
        "submission_id": other_receipt,
        "username": "canbo",
        "token_id": "x",
    }
    problems: list[str] = []
    for who in ("anonymous", "canbo", "tonghop", "quantri"):
        async with portal.client() as http:
            csrf = ""
            if who != "anonymous":
                await portal.sign_in_page(http, who)
                csrf = hidden(await http.get("/dashboard"), "csrf_token")
            for (method, template), allowed in sorted(PAGES.items()):
                if template in ("/sign-in", "/sign-out"):
                    continue  # signing in and out are tested above
                path = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)
                data: dict[str, Any] | None = {"csrf_token": csrf} if method == "POST" else None
                answer = await http.request(method, path, data=data)
                status, where = answer.status_code, f"{who} {method} {template}"
                if "Bí mật của xã Đăk Ang" in answer.text:
                    problems.append(f"{where}: another unit's report leaked")
                if status >= 500:
                    problems.append(f"{where}: {status}")
                elif who == "anonymous" and who not in allowed:
                    if status != 303 or not answer.headers["location"].startswith("/sign-in"):
                        problems.append(f"{where}: {status}, expected a redirect to sign in")
                elif who not in allowed:
                    if status != 403:
                        problems.append(f"{where}: {status}, expected 403")
                elif who == "canbo" and _names_other_unit(template):
                    if status != 404:
                        problems.append(f"{where}: {status}, expected 404 (another unit's)")
                elif status in (401, 403):
                    problems.append(f"{where}: {status}, expected to be let in")
    assert not problems, "\n".join(problems)


async def test_every_form_post_is_refused_without_its_csrf_token_or_with_a_wrong_one(
    portal: Portal,
) -> None:
    posts = sorted(template for method, template in page_routes(portal.app) if method == "POST")
    assert posts and all(("POST", t) in PAGES for t in posts), "classify new forms in PAGES"
    async with portal.client() as http:
        await portal.sign_in_page(http, "canbo")
        filed = await post_form(http, "submit", form_values())
        receipt = filed.headers["location"].split("/")[-2]
    ids = {
        "period_id": SEED_PERIOD,
        "unit_id": UNIT,  # the officer's own: what is refused is the token, not the unit
        "submission_id": receipt,
        "username": "canbo",
        "token_id": "x",
    }
    problems: list[str] = []
    async with AsyncExitStack() as stack:
        people: dict[str, httpx.AsyncClient] = {}
        for who in ("canbo", "tonghop", "quantri"):  # each signed in once: a refusal keeps them
            people[who] = await stack.enter_async_context(portal.client())
            await portal.sign_in_page(people[who], who)
        stranger = await stack.enter_async_context(portal.client())
        await stranger.get("/sign-in")  # the cookie half of the sign-in's double submit
        for template in posts:
            path = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], template)
            # Someone the form is for, so that only the token can be what refuses them.
            who = next(p for p in people if p in PAGES[("POST", template)])
            http = stranger if template == "/sign-in" else people[who]
            for sent in ({}, {"csrf_token": ""}, {"csrf_token": "x" * 32}):
                data = {**sent, "username": "canbo", "password": PASSWORD}
                answer = await http.post(path, data=data)
                where = f"{who} POST {template} {sent or 'no token'}: {answer.status_code}"
                if answer.status_code != 403 or "biểu mẫu" not in answer.text.lower():
                    problems.append(f"{where}, expected 403 for the form's token")
        for who, http in people.items():
            if (await http.get("/dashboard")).status_code != 200:
                problems.append(f"{who}: a forged form ended the session")
        if (await stranger.get("/dashboard")).status_code != 303:
            problems.append("a forged sign-in signed someone in")
    assert not problems, "\n".join(problems)


async def test_office_staff_see_every_expected_unit_and_the_rates(portal: Portal) -> None:
    async with portal.client() as http:
        await portal.sign_in_page(http, "canbo")
        await post_form(http, "submit", form_values())
    async with portal.client() as http:
        await portal.sign_in_page(http, "tonghop")
        dashboard = await http.get("/dashboard")
        status = await http.get(f"/periods/{SEED_PERIOD}/status")

    assert f'href="/periods/{SEED_PERIOD}/status"' in dashboard.text
    assert status.status_code == 200
    row = re.search(r'<tr id="unit-xa-bo-y".*?</tr>', status.text, re.S)
    assert row and "Đúng hạn" in row.group(0)
    missing = re.search(r'<tr id="unit-xa-dak-ang".*?</tr>', status.text, re.S)
    assert missing and "Chưa nộp (chưa đến hạn)" in missing.group(0)
    assert "1/32 đơn vị (3%)" in status.text
    assert "/api/v1/periods/kh-nq35-ngoc-hoi.2027.6-thang/reports" in status.text


async def test_an_officer_filing_by_api_and_the_form_see_the_same_report(portal: Portal) -> None:
    from tests.support.auth import bearer

    async with portal.client() as http:
        sent = await http.post(
            "/api/v1/submissions",
            json=report(unit_id=UNIT).model_dump(mode="json"),
            headers=bearer(Role.OFFICER, UNIT),
        )
        await portal.sign_in_page(http, "canbo")
        form = await http.get(FORM)

    assert sent.status_code == 201
    assert "Tổ chức 4 buổi quán triệt Nghị quyết 35-NQ/TW." in form.text


# --- review, versions, exceptions and extensions --------------------------------------------


UNIT_PAGE = f"/periods/{SEED_PERIOD}/units/{UNIT}"


async def test_office_returns_a_report_the_unit_resubmits_and_the_change_is_shown(
    portal: Portal,
) -> None:
    async with portal.client() as officer, portal.client() as office:
        await portal.sign_in_page(officer, "canbo")
        await post_form(officer, "submit", form_values())
        await portal.sign_in_page(office, "tonghop")
        page = await office.get(UNIT_PAGE)
        csrf = hidden(page, "csrf_token")
        bare = await office.post(
            f"{UNIT_PAGE}/review",
            data={"csrf_token": csrf, "revision": "1", "decision": "return", "comment": ""},
        )
        returned = await office.post(
            f"{UNIT_PAGE}/review",
            data={
                "csrf_token": csrf,
                "revision": "1",
                "decision": "return",
                "comment": "Đề nghị bổ sung số buổi tuyên truyền ở các thôn.",
            },
        )
        seen = await officer.get(UNIT_PAGE)
        dashboard = await officer.get("/dashboard")
        await post_form(officer, "submit", form_values(count="6"))
        versions = await office.get(UNIT_PAGE)
        changes = await office.get(f"{UNIT_PAGE}/diff?from=1&to=2")

    assert page.status_code == 200
    assert "Xem xét phiên bản mới nhất (lần 1)" in page.text
    assert bare.status_code == 422
    assert "cần ghi rõ nội dung đề nghị chỉnh sửa" in bare.text
    assert returned.headers["location"] == f"{UNIT_PAGE}?done=reviewed"
    assert "được trả lại để chỉnh sửa" in seen.text
    assert "Đề nghị bổ sung số buổi tuyên truyền ở các thôn." in seen.text
    assert "Xem xét phiên bản mới nhất" not in seen.text  # the officer does not review
    assert "Trả lại để chỉnh sửa" in dashboard.text
    assert "Sửa và gửi lại" in dashboard.text
    assert 'id="version-2"' in versions.text
    assert "So với lần 1" in versions.text
    assert changes.status_code == 200
    assert "Số buổi tuyên truyền, quán triệt: <del>4 buổi</del> → <ins>6 buổi</ins>" in changes.text


async def test_an_extension_asked_by_the_unit_and_decided_by_the_office(portal: Portal) -> None:
    async with portal.client() as officer, portal.client() as office:
        await portal.sign_in_page(officer, "canbo")
        page = await officer.get(UNIT_PAGE)
        bad_day = await officer.post(
            f"{UNIT_PAGE}/extension-request",
            data={"csrf_token": hidden(page, "csrf_token"), "reason": "Lũ", "due_before": "31/02"},
        )
        asked = await officer.post(
            f"{UNIT_PAGE}/extension-request",
            data={
                "csrf_token": hidden(page, "csrf_token"),
                "reason": "Mưa lũ chia cắt các thôn.",
                "due_before": "25/06/2027",
            },
        )
        await portal.sign_in_page(office, "tonghop")
        status = await office.get(f"/periods/{SEED_PERIOD}/status")
        decision_page = await office.get(UNIT_PAGE)
        decided = await office.post(
            f"{UNIT_PAGE}/extension-decision",
            data={
                "csrf_token": hidden(decision_page, "csrf_token"),
                "request_id": hidden(decision_page, "request_id"),
                "decision": "approve",
                "due_before": "",
                "reason": "",
            },
        )
        granted = await office.post(
            f"{UNIT_PAGE}/exception",
            data={
                "csrf_token": hidden(decision_page, "csrf_token"),
                "reason": "Chờ số liệu của thôn.",
                "until": "2027-07-20",
            },
        )
        after = await officer.get(UNIT_PAGE)

    assert bad_day.status_code == 422
    assert "Ngày chưa đúng dạng" in bad_day.text
    assert asked.headers["location"] == f"{UNIT_PAGE}?done=extension_requested"
    assert "đề nghị gia hạn chờ quyết định" in status.text
    assert "Mưa lũ chia cắt các thôn." in decision_page.text
    assert decided.headers["location"] == f"{UNIT_PAGE}?done=extension_decided"
    assert granted.headers["location"] == f"{UNIT_PAGE}?done=exception"
    assert "trước ngày 25/06/2027 (đã gia hạn)" in after.text
    assert "đã được đồng ý" in after.text
    assert "Chờ số liệu của thôn." in after.text


# --- files on the report form ---------------------------------------------------------------


async def test_a_file_uploaded_with_the_form_keeps_what_was_typed_and_goes_with_the_report(
    portal: Portal,
) -> None:
    async with portal.client() as http:
        await portal.sign_in_page(http, "canbo")
        page = await http.get(FORM)
        fields = {
            "csrf_token": hidden(page, "csrf_token"),
            "idempotency_key": hidden(page, "idempotency_key"),
            "action": "upload",
            **form_values(results="Đã nhập trước khi tải tệp."),
        }
        not_a_pdf = await http.post(
            FORM, data=fields, files={"file": ("bao-cao.pdf", b"plain text", "application/pdf")}
        )
        uploaded = await http.post(
            FORM,
            data=fields,
            files={"file": ("Biên bản họp.pdf", attachments.pdf(), "application/pdf")},
        )
        resumed = await http.get(uploaded.headers["location"])
        chosen = re.findall(r'name="attach" value="([^"]+)" checked', resumed.text)
        forgot = await post_form(http, "submit", form_values(), file="khac.pdf", attach=chosen[0])
        filed = await post_form(http, "submit", form_values(), attach=chosen[0])
        receipt = await http.get(filed.headers["location"])
        gone = await post_form(http, f"delete:{chosen[0]}", form_values())

    assert not_a_pdf.status_code == 415
    assert 'id="f-file-error"' in not_a_pdf.text
    assert "Đã nhập trước khi tải tệp." in not_a_pdf.text  # nothing typed is lost
    assert uploaded.headers["location"] == f"{FORM}?uploaded=1"
    assert "Đã tải tệp lên" in resumed.text
    assert "Đã nhập trước khi tải tệp." in resumed.text
    assert "Gửi kèm: Biên bản họp.pdf" in resumed.text
    assert len(chosen) == 1
    assert forgot.status_code == 422
    assert "đã được chọn nhưng chưa được tải lên" in forgot.text
    assert filed.status_code == 303
    assert "Tệp đính kèm (1)" in receipt.text
    assert "Biên bản họp.pdf" in receipt.text
    assert gone.status_code == 409  # filed with the report: kept as filed
    assert "không xóa được" in gone.text


async def test_a_form_without_a_file_keeps_the_apis_body_limit(portal: Portal) -> None:
    async with portal.client() as http:
        await portal.sign_in_page(http, "canbo")
        huge = await post_form(http, "submit", form_values(results="x" * 1_100_000))

    assert huge.status_code == 413
    assert "quá lớn" in huge.text


def consolidated_version(version: int, names: list[tuple[str, str]]) -> ReportConsolidatedV2:
    """Version ``version`` of the period's report as consolidate announces it, with these
    (media type, file name) files: the DOCX first, as its DocumentRef puts it."""
    event = notices.consolidated(version)
    (docx, docx_name), *others = names
    document = DocumentRef(
        document_id=f"d-{version}",
        media_type=docx,
        filename=docx_name,
        sha256="0" * 64,
        files=[DocumentFile(media_type=m, filename=f, sha256="1" * 64, size=9) for m, f in others],
    )
    payload = event.payload.model_copy(
        update={"report_id": f"bc {version}/x", "version": version, "document": document}
    )
    return event.model_copy(update={"event_id": uuid.uuid4(), "payload": payload})


async def test_the_period_page_links_each_consolidated_versions_files(
    portal: Portal, servers: Servers, namespace: str
) -> None:
    docx, xlsx, pdf = (
        docx_report.MEDIA_TYPE,
        xlsx_annex.MEDIA_TYPE,
        consolidate_pdf.MEDIA_TYPE,
    )
    first = consolidated_version(1, [(docx, "bao-cao-v1.docx"), (xlsx, "phu-luc-v1.xlsx")])
    second = consolidated_version(
        2, [(docx, "bao-cao-v2.docx"), (xlsx, "phu-luc-v2.xlsx"), (pdf, "bao-cao-v2.pdf")]
    )
    async with portal.client() as http:
        await portal.sign_in_page(http, "tonghop")
        before = await http.get(f"/periods/{SEED_PERIOD}/status")
        producer = AIOKafkaProducer(bootstrap_servers=servers.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for event in (first, second, second):  # the last one redelivered
                await producer.send_and_wait(
                    Names(namespace).topic(REPORT_CONSOLIDATED_V2),
                    event.model_dump_json().encode(),
                    key=SEED_PERIOD.encode(),
                )
        finally:
            await producer.stop()

        async def listed() -> httpx.Response | None:
            page = await http.get(f"/periods/{SEED_PERIOD}/status")
            return page if "bao-cao-v2.pdf" in page.text else None

        page = await eventually(listed, what="the versions on the period page")

    assert "Chưa có báo cáo tổng hợp nào cho kỳ này." in before.text
    # consolidate's own route for a version's file, on the address browsers reach it at.
    route = "/api/v1/periods/{period_id}/reports/{report_id}/files/{name}"
    assert route in {r.path for r in consolidate_web.router.routes if isinstance(r, APIRoute)}
    base = f"http://127.0.0.1:8003/api/v1/periods/{SEED_PERIOD}/reports"
    links = re.findall(
        r'<a href="(http://127\.0\.0\.1:8003[^"]+/files/[^"]+)">([^<]+)</a>', page.text
    )
    assert links == [
        (f"{base}/bc%202%2Fx/files/bao-cao-v2.docx", "Báo cáo (DOCX)"),
        (f"{base}/bc%202%2Fx/files/phu-luc-v2.xlsx", "Phụ lục số liệu (XLSX)"),
        (f"{base}/bc%202%2Fx/files/bao-cao-v2.pdf", "Bản PDF"),
        (f"{base}/bc%201%2Fx/files/bao-cao-v1.docx", "Báo cáo (DOCX)"),
        (f"{base}/bc%201%2Fx/files/phu-luc-v1.xlsx", "Phụ lục số liệu (XLSX)"),
    ]
    assert "Phiên bản 2 (mới nhất)" in page.text
    assert page.text.count("Phiên bản 2") == 1  # the redelivery is the same version


async def test_the_admin_reads_each_units_contacts_from_the_plan(portal: Portal) -> None:
    async with portal.client() as admin, portal.client() as officer:
        await portal.sign_in_page(admin, "quantri")
        page = await admin.get("/admin/contacts")
        await portal.sign_in_page(officer, "canbo")
        refused = await officer.get("/admin/contacts")

    assert page.status_code == 200, page.text
    assert refused.status_code == 403
    text = page.text
    assert 'href="/admin/contacts"' in text  # in the admin's menu
    # The seed plan's consolidating office, its two contacts, and a commune's officer with
    # both channels, as the plan file gives them.
    assert "Phòng Văn hóa và Thông tin (cơ quan tổng hợp)" in text
    assert "vanhoa@ngochoi.example" in text and "truongphong.vanhoa@ngochoi.example" in text
    assert "+84 900 000 028" in text or "+84900000028" in text
    assert "Thư điện tử, Tin nhắn SMS" in text
    assert "Cán bộ đầu mối" in text  # the seed names no unit head (duty: head)
