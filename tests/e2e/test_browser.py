"""The pages in a real browser (Debian's chromium driven by Playwright) on the whole system.

An officer opens the one address, signs in, picks the open period, fills two tasks with their
indicators, sees a mistake explained in Vietnamese next to its field, fixes it, saves a draft,
attaches a PDF, files and gets the receipt; office staff see the unit on time and return the
report with a comment; the unit resubmits; office staff compare the two versions. Every page is
photographed under ``.stack/screenshots/`` (the form also 360 px wide), and the form and the
dashboards are checked with axe: no serious or critical accessibility violation. At 360 px, a
small phone, the form, the dashboards and the period's status never scroll sideways.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect

from services.common.auth import Role
from services.common.mongo import connect
from services.submissions.account_store import MongoAccountStore
from services.submissions.accounts import Account, hash_password
from tests.conftest import Servers
from tests.e2e.conftest import ROOT, SEED_PLAN, System
from tests.support.attachments import pdf

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = ROOT / ".stack" / "screenshots"
PERIOD = "kh-nq35-ngoc-hoi.2027.6-thang"
PERIOD_TITLE = "Báo cáo 6 tháng năm 2027"
UNIT = "xa-bo-y"
PASSWORD = "mật-khẩu-trình-duyệt-2027"
FIRST, SECOND = "ii-1-1-tuyen-truyen-giao-duc", "ii-1-2-cap-nhat-van-ban-trang-ttdt"
UNIT_NAME = "Ủy ban nhân dân xã Bờ Y"
RETURN_COMMENT = "Đề nghị cập nhật số tin bài đến hết ngày 31/5."


def field(name: str) -> str:
    """The CSS selector of a form field by its name (ids are the names with dots as --)."""
    return "#f-" + name.replace(".", "--")


@pytest.fixture(scope="module")
def browser_system(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The seed plan on 1 June 2027 (the six-month period open, not due), over plain HTTP, with
    the pages' link to consolidate pointing at this system's consolidate."""
    namespace = "e2e" + uuid.uuid4().hex[:10]
    system = System(
        servers,
        namespace,
        [SEED_PLAN],
        "2027-06-01T09:00:00+07:00",
        tmp_path_factory.mktemp("e2e") / namespace,
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("BAOCAO_COOKIE_SECURE", "false")
        env.setenv("BAOCAO_CONSOLIDATE_URL", system.url("consolidate"))
        system.start()
    yield system
    system.stop()


@pytest.fixture(scope="module")
async def people(browser_system: System) -> dict[str, str]:
    """An officer of xã Bờ Y, office staff and an admin, made in the system's account store."""
    client = connect(browser_system.servers.mongo_uri)
    database = f"{browser_system.namespace.replace('-', '_')}_baocao_submissions"
    accounts = MongoAccountStore(client[database])
    suffix = uuid.uuid4().hex[:6]
    made = {
        "officer": Account(
            f"canbo-{suffix}",
            "Nguyễn Thị Hà",
            Role.OFFICER,
            UNIT,
            password_hash=hash_password(PASSWORD),
        ),
        "office": Account(
            f"tonghop-{suffix}",
            "Trần Văn Tổng",
            Role.OFFICE,
            "phong-vhtt",
            password_hash=hash_password(PASSWORD),
        ),
        "admin": Account(
            f"quantri-{suffix}", "Quản trị", Role.ADMIN, password_hash=hash_password(PASSWORD)
        ),
    }
    try:
        for account in made.values():
            await accounts.create(account, dt.datetime.now(dt.UTC))
    finally:
        await client.close()
    return {role: account.username for role, account in made.items()}


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()


async def new_page(browser: Browser) -> Page:
    context = await browser.new_context(
        locale="vi-VN", timezone_id="Asia/Ho_Chi_Minh", viewport={"width": 1280, "height": 900}
    )
    return await context.new_page()


async def shoot(page: Page, name: str, *, full_page: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    return path


async def accessible(page: Page, what: str) -> None:
    """axe finds no serious or critical violation on the page as it is now."""
    results = await Axe().run(page)
    bad: list[dict[str, Any]] = [
        v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")
    ]
    summary = [
        f"{v['id']} ({v['impact']}): {v['help']} — {[n['target'] for n in v['nodes']][:3]}"
        for v in bad
    ]
    assert not bad, f"{what}: " + "\n".join(summary)


PHONE: ViewportSize = {"width": 360, "height": 780}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}


async def fits_a_phone(page: Page, what: str) -> None:
    """At 360 px wide the page is no wider than the screen (only its own boxes, such as a
    wide table's, may scroll sideways); the desktop size is set back after."""
    await page.set_viewport_size(PHONE)
    try:
        widths = await page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]"
        )
    finally:
        await page.set_viewport_size(DESKTOP)
    scroll_width, inner_width = widths
    assert inner_width == PHONE["width"], widths
    assert scroll_width <= inner_width, f"{what}: {scroll_width} px wide on a 360 px screen"


async def sign_in(page: Page, system: System, username: str) -> None:
    await page.goto(system.url("submissions") + "/")
    await expect(page).to_have_url(system.url("submissions") + "/sign-in")
    await page.get_by_label("Tên đăng nhập").fill(username)
    await page.get_by_label("Mật khẩu").fill(PASSWORD)
    await page.get_by_role("button", name="Đăng nhập").click()
    await expect(page).to_have_url(system.url("submissions") + "/dashboard")


async def sign_out(page: Page) -> None:
    await page.get_by_role("button", name="Đăng xuất").click()
    await expect(page.get_by_text("Bạn đã đăng xuất.")).to_be_visible()


async def test_an_officer_files_through_the_form_and_office_staff_see_it(
    browser_system: System, people: dict[str, str], browser: Browser
) -> None:
    system = browser_system
    page = await new_page(browser)

    # The one address leads to the sign-in page.
    await page.goto(system.url("submissions") + "/")
    await expect(page.get_by_role("heading", name="Đăng nhập")).to_be_visible()
    await shoot(page, "01-sign-in")
    await accessible(page, "the sign-in page")

    await sign_in(page, system, people["officer"])
    await expect(page.get_by_role("heading", name="Báo cáo của đơn vị")).to_be_visible()
    await shoot(page, "02-officer-dashboard")
    await accessible(page, "the officer's dashboard")
    await fits_a_phone(page, "the officer's dashboard")

    # Pick the open period.
    await page.get_by_role("link", name=f"Lập báo cáo – {PERIOD_TITLE}").click()
    await expect(page.get_by_role("heading", name=PERIOD_TITLE, exact=True)).to_be_visible()
    await expect(page.get_by_text("Chủ trì (được giao)").first).to_be_visible()
    await shoot(page, "03-form")
    await accessible(page, "the report form")
    await fits_a_phone(page, "the report form")

    # Two tasks with their indicators; one figure is not a whole number.
    await page.select_option(field(f"{FIRST}.status"), "completed")
    await page.fill(field(f"{FIRST}.results"), "Tổ chức 4 buổi quán triệt Nghị quyết 35-NQ/TW.")
    await page.fill(field(f"{FIRST}.ind.so-buoi-tuyen-truyen"), "4")
    await page.fill(field(f"{FIRST}.ind.so-luot-nguoi-tham-du"), "250,5")
    await page.fill(field(f"{FIRST}.ind.so-van-ban-chi-dao"), "2")
    await page.fill(field(f"{FIRST}.difficulties"), "Một số thôn ở xa, đi lại khó khăn.")
    await page.select_option(field(f"{SECOND}.status"), "in_progress")
    await page.fill(field(f"{SECOND}.results"), "Đăng 12 tin bài trên trang thông tin điện tử.")
    await page.fill(field(f"{SECOND}.ind.so-tin-bai"), "12")
    await page.get_by_role("button", name="Gửi báo cáo").click()

    # The mistake, in Vietnamese, at the top and next to its field.
    summary = page.locator("#error-summary")
    await expect(summary).to_be_visible()
    await expect(summary).to_be_focused()
    wrong = field(f"{FIRST}.ind.so-luot-nguoi-tham-du")
    await expect(page.locator(f"{wrong}-error")).to_have_text(
        "Lỗi: Nhập một số nguyên không âm (ví dụ 4); đã nhập 250,5."
    )
    await expect(page.locator(wrong)).to_have_attribute("aria-invalid", "true")
    await expect(page.locator(field(f"{SECOND}.results"))).to_have_value(
        "Đăng 12 tin bài trên trang thông tin điện tử."
    )  # nothing typed is lost
    await shoot(page, "04-form-with-an-error")
    await accessible(page, "the report form with an error")
    await page.set_viewport_size(PHONE)
    await shoot(page, "05-form-360px")
    await page.set_viewport_size(DESKTOP)
    await fits_a_phone(page, "the report form with an error")

    # The link in the summary leads to the field; fix it, save a draft, resume, file.
    await summary.get_by_role("link").first.click()
    await expect(page.locator(wrong)).to_be_focused()
    await page.fill(wrong, "250")
    await page.get_by_role("button", name="Lưu nháp").click()
    await expect(page.get_by_text("Đã lưu nháp.")).to_be_visible()
    await page.goto(system.url("submissions") + "/dashboard")
    await expect(page.get_by_text("có bản nháp lưu lúc")).to_be_visible()
    await page.get_by_role("link", name=f"Tiếp tục bản nháp – {PERIOD_TITLE}").click()
    await expect(page.locator(wrong)).to_have_value("250")

    # A signed minute attached with the form; what was typed stays.
    await page.fill(field(f"{FIRST}.proposals"), "Đề nghị hỗ trợ tài liệu tuyên truyền.")
    await page.set_input_files(
        "#f-file",
        files=[{"name": "Biên bản họp.pdf", "mimeType": "application/pdf", "buffer": pdf()}],
    )
    await page.get_by_role("button", name="Tải tệp lên").click()
    await expect(page.get_by_text("Đã tải tệp lên")).to_be_visible()
    await expect(page.get_by_label("Gửi kèm: Biên bản họp.pdf")).to_be_checked()
    await expect(page.locator(field(f"{FIRST}.proposals"))).to_have_value(
        "Đề nghị hỗ trợ tài liệu tuyên truyền."
    )
    await page.get_by_role("button", name="Gửi báo cáo").click()

    # The receipt: number, server time in local time, on time, the tasks reported.
    await expect(page.get_by_role("heading", name="Biên nhận báo cáo")).to_be_visible()
    await expect(page.locator(".receipt-no")).to_contain_text("TN-2027-")
    await expect(page.get_by_text("Đúng hạn")).to_be_visible()
    await expect(page.get_by_text("(giờ máy chủ, UTC+07:00)")).to_be_visible()
    reported = page.locator("ol.reported > li")
    await expect(reported).to_have_count(2)
    await expect(reported.nth(0)).to_contain_text("Số lượt người tham dự: 250")
    await expect(reported.nth(1)).to_contain_text("Đang thực hiện")
    await expect(page.locator("ul.attached")).to_contain_text("Biên bản họp.pdf")
    receipt_no = (await page.locator(".receipt-no strong").inner_text()).strip()
    await shoot(page, "06-receipt")
    await accessible(page, "the receipt")
    await sign_out(page)

    # Office staff: the period's status shows the unit on time, with the receipt.
    await sign_in(page, system, people["office"])
    await expect(page.get_by_role("heading", name="Các kỳ báo cáo")).to_be_visible()
    await shoot(page, "07-office-dashboard")
    await accessible(page, "the office dashboard")
    await fits_a_phone(page, "the office dashboard")
    await page.get_by_role("link", name=PERIOD_TITLE).first.click()
    row = page.locator(f"#unit-{UNIT}")
    await expect(row).to_contain_text("Đúng hạn")
    await expect(row).to_contain_text(receipt_no)
    await expect(page.get_by_text("Gửi đúng hạn")).to_be_visible()
    link = page.get_by_role("link", name="Danh sách các phiên bản (JSON)")
    await expect(link).to_have_attribute(
        "href", f"{system.url('consolidate')}/api/v1/periods/{PERIOD}/reports"
    )
    await shoot(page, "08-period-status")
    await accessible(page, "the period's status")
    await fits_a_phone(page, "the period's status")

    # Office staff return the report with a comment.
    await row.get_by_role("link", name=UNIT_NAME).click()
    await expect(page.get_by_role("heading", name=UNIT_NAME)).to_be_visible()
    await page.get_by_label("Trả lại để chỉnh sửa").check()
    await page.get_by_label("Ý kiến (bắt buộc khi trả lại)").fill(RETURN_COMMENT)
    await page.get_by_role("button", name="Ghi nhận").click()
    await expect(page.get_by_text("Đã ghi nhận kết quả xem xét")).to_be_visible()
    await expect(page.locator("#version-1")).to_contain_text(RETURN_COMMENT)
    await shoot(page, "09-unit-returned")
    await accessible(page, "the unit's versions")
    await sign_out(page)

    # The unit sees why, corrects and resubmits.
    await sign_in(page, system, people["officer"])
    await expect(page.get_by_text("Trả lại để chỉnh sửa")).to_be_visible()
    await page.get_by_role("link", name=f"Sửa và gửi lại – {PERIOD_TITLE}").click()
    await expect(page.locator(field(f"{SECOND}.ind.so-tin-bai"))).to_have_value("12")
    await page.fill(field(f"{SECOND}.ind.so-tin-bai"), "15")
    await page.fill(
        field(f"{SECOND}.results"), "Đăng 15 tin bài trên trang thông tin điện tử của xã."
    )
    await page.get_by_role("button", name="Gửi báo cáo").click()
    await expect(page.get_by_text("Bổ sung lần 1 (phiên bản 2)")).to_be_visible()
    await sign_out(page)

    # Office staff compare the two versions.
    await sign_in(page, system, people["office"])
    await page.goto(f"{system.url('submissions')}/periods/{PERIOD}/units/{UNIT}")
    await page.get_by_role("link", name="So với lần 1").click()
    await expect(page.get_by_role("heading", name="Thay đổi từ lần 1 đến lần 2")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("12 tin/bài")
    await expect(page.locator("main ins").first).to_be_visible()
    await expect(page.locator("main")).to_contain_text("15 tin/bài")
    await shoot(page, "10-version-diff")
    await accessible(page, "the version diff")
    await sign_out(page)

    # An admin reaches the accounts, tokens and audit pages from the dashboard.
    await sign_in(page, system, people["admin"])
    for name, shot in (
        ("Tài khoản", "11-admin-accounts"),
        ("Mã truy cập API", "12-admin-tokens"),
        ("Nhật ký truy cập", "13-admin-audit"),
    ):
        await page.get_by_role("navigation").get_by_role("link", name=name).click()
        await expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()
        await shoot(page, shot)
        await accessible(page, f"the admin page {name}")
    await expect(page.locator("table.audit")).to_contain_text("submission")
    await page.context.close()
