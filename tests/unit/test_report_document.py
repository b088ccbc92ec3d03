"""The district report's DOCX and XLSX, read back as a clerk's software would read them."""

from __future__ import annotations

import datetime as dt
import io

import docx
import pytest
from openpyxl import load_workbook

from contracts.events import IndicatorValue, ReportConsolidatedPayload, TaskReport
from services.consolidate import content, docx_report, xlsx_annex
from services.consolidate.domain import consolidate
from tests.unit.test_consolidate_domain import DUE, NOW, PERIOD, PLAN, row

pytestmark = pytest.mark.unit


def late_and_difficult() -> ReportConsolidatedPayload:
    assert PERIOD is not None
    rows = [
        row(
            "xa-a",
            1,
            DUE - dt.timedelta(days=1),
            TaskReport(
                task_id="tuyen-truyen",
                status="completed",
                results="Tổ chức 3 buổi tuyên truyền cho 240 lượt người.",
                indicators=[
                    IndicatorValue(code="so-buoi", value=3),
                    IndicatorValue(code="so-tin-bai", value=1250),
                ],
                difficulties="Thiếu kinh phí in tài liệu.",
                proposals="Đề nghị bổ sung kinh phí.",
            ),
        ),
        row(
            "phong-vhtt",
            1,
            DUE + dt.timedelta(hours=5),
            TaskReport(
                task_id="tuyen-truyen",
                status="in_progress",
                results="Đăng 12 tin, bài trên Trang TTĐT.",
                indicators=[IndicatorValue(code="so-buoi", value=1)],
            ),
        ),
    ]
    return consolidate(
        PLAN, PERIOD, rows, now=NOW, trigger="period_closed", version=1, report_id="r-1"
    )


def paragraphs(document: docx.document.Document) -> list[str]:
    texts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for cell in table._cells:
            texts += [p.text for p in cell.paragraphs]
    return texts


def test_the_docx_follows_decree_30_and_says_what_the_units_reported() -> None:
    payload = late_and_difficult()
    rendered = docx_report.render(content.build(payload, PLAN))
    document = docx.Document(io.BytesIO(rendered))
    text = "\n".join(paragraphs(document))

    section = document.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (210, 297)
    assert round(section.left_margin.mm) == 30 and round(section.right_margin.mm) == 15
    assert round(section.top_margin.mm) == round(section.bottom_margin.mm) == 20
    assert document.styles["Normal"].font.name == "Times New Roman"
    assert "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM" in text
    assert "Độc lập - Tự do - Hạnh phúc" in text
    assert "Số: …/BC-UBND" in text
    assert f"{PLAN.issuer_place}, ngày " in text
    assert "BÁO CÁO" in text
    assert f"Kết quả thực hiện Kế hoạch {PLAN.title}" in text
    assert payload.title.removeprefix("Báo cáo ") in text
    for heading in docx_report.SECTION_HEADINGS:
        assert heading in text
    # Results under their task, the lead unit first, attributed.
    body = [p.text for p in document.paragraphs]
    at = body.index("II.1. Tuyên truyền")
    entries = [p for p in body[at + 1 : at + 5] if p.startswith("- ")]
    assert entries[0].startswith("- Phòng Văn hóa và Thông tin (chủ trì): Đăng 12 tin")
    assert entries[1].startswith("- UBND xã A (chủ trì): Tổ chức 3 buổi")
    assert "Hoàn thành: 1 đơn vị; Đang thực hiện: 1 đơn vị." in text
    assert "Đơn vị báo cáo quá hạn: Phòng Văn hóa và Thông tin." in text
    assert "Công an huyện" in text.split("Đơn vị chưa báo cáo:")[1]
    assert "- UBND xã A: Thiếu kinh phí in tài liệu." in text
    assert "- UBND xã A: Đề nghị bổ sung kinh phí." in text
    assert "1.250" in text  # figures in Vietnamese style
    assert "Nơi nhận:" in text


def test_a_draft_says_so_and_the_signature_block_comes_from_the_plan() -> None:
    from services.common.reference import load_plan
    from services.common.settings import SEED_PLAN

    seed = load_plan(SEED_PLAN)
    payload = late_and_difficult().model_copy(update={"plan_id": seed.id, "tasks": []})
    document = docx.Document(
        io.BytesIO(docx_report.render(content.build(payload, seed, draft=True)))
    )
    text = "\n".join(paragraphs(document))
    assert "DỰ THẢO" in text
    assert "TM. ỦY BAN NHÂN DÂN" in text and "KT. CHỦ TỊCH" in text
    assert "PHÓ CHỦ TỊCH" in text
    assert "Mai Văn Hữu" not in text  # the name is left for whoever signs
    for recipient in seed.recipients:
        assert f"- {recipient}" in text


def test_the_xlsx_annex_keeps_figures_as_numbers() -> None:
    payload = late_and_difficult()
    workbook = load_workbook(io.BytesIO(xlsx_annex.render(payload, PLAN)))

    assert workbook.sheetnames == list(xlsx_annex.SHEETS)
    status = workbook[xlsx_annex.SHEETS[0]]
    rows = list(status.iter_rows(min_row=3, values_only=True))
    assert len(rows) == payload.expected
    by_unit = {r[1]: r for r in rows}
    assert by_unit["Phòng Văn hóa và Thông tin"][3] == "Quá hạn"
    assert by_unit["Công an huyện"][3] == "Chưa báo cáo"
    assert status.freeze_panes == "A3"
    totals = {
        (r[0], r[1]): r[4]
        for r in workbook[xlsx_annex.SHEETS[1]].iter_rows(min_row=3, values_only=True)
    }
    assert totals[("Số buổi tuyên truyền", "Tất cả đơn vị")] == 4
    assert isinstance(totals[("Số tin, bài", "Tất cả đơn vị")], float | int)
    per_unit = list(workbook[xlsx_annex.SHEETS[2]].iter_rows(min_row=3, values_only=True))
    assert ("Số tin, bài", "UBND xã A") in {(r[0], r[1]) for r in per_unit}
