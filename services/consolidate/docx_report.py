"""The district report as a DOCX in the layout of Decree 30/2020/NĐ-CP (Appendix I).

A4; margins top and bottom 20 mm, left 30 mm, right 15 mm; Times New Roman, body 14 pt.
The opening block is a two-column table without borders: the issuing body and the number
(left), the national name, the motto and the place and date (right). Then the kind of document
("BÁO CÁO") and its subject, the body, and at the end "Nơi nhận" (left) beside the signature
block (right), whose name line is left for the signer.
"""

from __future__ import annotations

import io

import docx
from docx.document import Document
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Mm, Pt
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph

from services.consolidate.content import Remark, ReportContent

FONT = "Times New Roman"
BODY_PT = 14
MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

SECTION_HEADINGS = (
    "I. TÌNH HÌNH TIẾP NHẬN BÁO CÁO",
    "II. KẾT QUẢ THỰC HIỆN CÁC NHIỆM VỤ",
    "III. CÁC CHỈ TIÊU",
    "IV. KHÓ KHĂN, VƯỚNG MẮC",
    "V. ĐỀ XUẤT, KIẾN NGHỊ",
)
"""The body's sections, in order; tests and the PDF check count them."""


def render(content: ReportContent) -> bytes:
    document = docx.Document()
    _page(document)
    _opening_block(document, content)
    _title(document, content)
    _intake(document, content)
    _tasks(document, content)
    _indicators(document, content)
    _remarks(document, SECTION_HEADINGS[3], content.difficulties)
    _remarks(document, SECTION_HEADINGS[4], content.proposals)
    _closing_block(document, content)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


# --- page and text ----------------------------------------------------------------------------


def _page(document: Document) -> None:
    section = document.sections[0]
    section.orientation = WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.top_margin = section.bottom_margin = Mm(20)
    section.left_margin, section.right_margin = Mm(30), Mm(15)
    normal = document.styles["Normal"]
    normal.font.name = FONT
    normal.font.size = Pt(BODY_PT)
    # Without the east-Asian slot Word falls back to another face for some Vietnamese letters.
    fonts = normal.element.get_or_add_rPr().get_or_add_rFonts()
    for slot in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(slot), FONT)
    normal.paragraph_format.space_after = Pt(6)
    normal.paragraph_format.line_spacing = 1.15
    core = document.core_properties
    core.language = "vi-VN"


def _text(
    paragraph: Paragraph,
    text: str,
    *,
    bold: bool = False,
    italic: bool = False,
    size: float | None = None,
) -> Paragraph:
    run = paragraph.add_run(text)
    run.bold, run.italic = bold, italic
    if size is not None:
        run.font.size = Pt(size)
    return paragraph


def _line(
    container: Document | _Cell,
    text: str,
    *,
    bold: bool = False,
    italic: bool = False,
    size: float | None = None,
    align: WD_ALIGN_PARAGRAPH | None = None,
    space_after: float = 0,
) -> Paragraph:
    paragraph = container.add_paragraph()
    paragraph.paragraph_format.space_after = Pt(space_after)
    if align is not None:
        paragraph.alignment = align
    return _text(paragraph, text, bold=bold, italic=italic, size=size)


def _body(document: Document, text: str, *, indent: bool = True) -> Paragraph:
    paragraph = _line(document, text, align=WD_ALIGN_PARAGRAPH.JUSTIFY, space_after=6)
    if indent:
        paragraph.paragraph_format.first_line_indent = Mm(10)
    return paragraph


def _heading(document: Document, text: str) -> Paragraph:
    paragraph = _line(document, text, bold=True, space_after=6)
    paragraph.paragraph_format.space_before = Pt(6)
    paragraph.paragraph_format.keep_with_next = True
    return paragraph


def _borderless(table: Table) -> None:
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "nil")
        borders.append(element)
    table._tbl.tblPr.append(borders)


def _two_columns(document: Document, left_mm: float, right_mm: float) -> tuple[_Cell, _Cell]:
    """A borderless one-row table of fixed widths (Word and LibreOffice both honour them)."""
    table = document.add_table(rows=1, cols=2)
    _borderless(table)
    table.autofit = False
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    layout = OxmlElement("w:tblLayout")
    layout.set(qn("w:type"), "fixed")
    table._tbl.tblPr.append(layout)
    for column, width in zip(table.columns, (left_mm, right_mm), strict=True):
        column.width = Mm(width)
        for cell in column.cells:
            cell.width = Mm(width)
    left, right = table.rows[0].cells
    return left, right


def _first_paragraph(cell: _Cell) -> Paragraph:
    paragraph: Paragraph = cell.paragraphs[0]
    paragraph.paragraph_format.space_after = Pt(0)
    return paragraph


# --- the parts ----------------------------------------------------------------------------------


def _opening_block(document: Document, content: ReportContent) -> None:
    left, right = _two_columns(document, 70, 95)
    center = WD_ALIGN_PARAGRAPH.CENTER
    first = _first_paragraph(left)
    first.alignment = center
    _text(first, content.issuer.upper(), bold=True, size=13)
    _line(left, "———", align=center, size=13)
    _line(left, content.number_line, align=center, size=13)
    top = _first_paragraph(right)
    top.alignment = center
    _text(top, content.national_name, bold=True, size=12)
    _line(right, content.motto, bold=True, align=center, size=13)
    _line(right, "———————————", align=center, size=13)
    _line(right, content.date_line, italic=True, align=center, size=14)
    _line(document, "", space_after=6)


def _title(document: Document, content: ReportContent) -> None:
    center = WD_ALIGN_PARAGRAPH.CENTER
    if content.draft:
        _line(document, "DỰ THẢO", bold=True, align=center, size=13)
    _line(document, content.heading, bold=True, align=center, space_after=0)
    _line(document, content.subject, bold=True, align=center, space_after=0)
    _line(document, "———", align=center, space_after=12)


def _intake(document: Document, content: ReportContent) -> None:
    _heading(document, SECTION_HEADINGS[0])
    _body(
        document,
        f"Kỳ báo cáo: {content.period_title}. Số đơn vị phải báo cáo: {content.expected}; "
        f"đã báo cáo: {content.received} (đúng hạn {content.on_time}, quá hạn {content.late}); "
        f"chưa báo cáo: {content.missing}. Tỷ lệ đơn vị báo cáo: {content.completeness}; "
        f"tỷ lệ báo cáo đúng hạn: {content.on_time_rate}.",
    )
    _body(
        document,
        "Đơn vị báo cáo quá hạn: " + ("; ".join(content.late_units) or "không có") + ".",
    )
    _body(
        document,
        "Đơn vị chưa báo cáo: " + ("; ".join(content.missing_units) or "không có") + ".",
    )


def _tasks(document: Document, content: ReportContent) -> None:
    _heading(document, SECTION_HEADINGS[1])
    if not content.tasks:
        _body(document, "Chưa có đơn vị nào báo cáo kết quả thực hiện nhiệm vụ.")
    for task in content.tasks:
        _line(document, f"{task.section}. {task.title}", bold=True, italic=True, space_after=3)
        counts = "; ".join(f"{label}: {n} đơn vị" for label, n in task.status_counts.items())
        _body(document, f"Tình hình thực hiện: {counts}." if counts else "Chưa có đơn vị báo cáo.")
        for entry in task.entries:
            paragraph = _body(document, "")
            who = f"{entry.unit_name} (chủ trì)" if entry.lead else entry.unit_name
            _text(paragraph, f"- {who}: ", bold=True)
            _text(paragraph, entry.results or "(không nêu kết quả)")


def _indicators(document: Document, content: ReportContent) -> None:
    _heading(document, SECTION_HEADINGS[2])
    if not content.indicators:
        _body(document, "Kế hoạch không đặt chỉ tiêu cho kỳ này, hoặc chưa có số liệu.")
        return
    _body(document, "Chi tiết từng đơn vị tại Phụ lục kèm theo.")
    beside = bool(content.previous_title)
    header: tuple[str, ...] = ("Chỉ tiêu", "Đơn vị tính", "Cách tổng hợp", "Kết quả", "Số đơn vị")
    if beside:
        header += (f"Kỳ trước ({content.previous_title})",)
    table = document.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        _text(_first_paragraph(cell), text, bold=True, size=12)
    for row in content.indicators:
        cells = table.add_row().cells
        values: tuple[str, ...] = (
            row.name,
            row.unit_of_measure,
            row.aggregation,
            f"{row.value} ({row.spread})" if row.spread else row.value,
            str(row.reporting_units),
        )
        if beside:
            values += (row.previous or "—",)
        for cell, text in zip(cells, values, strict=True):
            _text(_first_paragraph(cell), text, size=12)
    if content.cross_checks:
        _line(document, "Số liệu cần xem lại:", italic=True, space_after=3)
        for check in content.cross_checks:
            _body(document, f"- {check}")
    for row in content.indicators:
        if row.listed:
            _line(document, row.name + ":", italic=True, space_after=3)
            for unit, answer in row.listed:
                _body(document, f"- {unit}: {answer}")


def _remarks(document: Document, heading: str, remarks: list[Remark]) -> None:
    _heading(document, heading)
    if not remarks:
        _body(document, "Các đơn vị không nêu.")
        return
    current = None
    for remark in remarks:
        if remark.section != current:
            current = remark.section
            _line(document, f"{remark.section}. {remark.task_title}", italic=True, space_after=3)
        paragraph = _body(document, "")
        _text(paragraph, f"- {remark.unit_name}: ", bold=True)
        _text(paragraph, remark.text)


def _closing_block(document: Document, content: ReportContent) -> None:
    _line(document, "", space_after=6)
    left, right = _two_columns(document, 80, 85)
    _text(_first_paragraph(left), "Nơi nhận:", bold=True, italic=True, size=12)
    for recipient in content.recipients:
        _line(left, f"- {recipient}", size=11)
    center = WD_ALIGN_PARAGRAPH.CENTER
    first = _first_paragraph(right)
    first.alignment = center
    _text(first, content.signer_authority[0], bold=True)
    for line in content.signer_authority[1:]:
        _line(right, line, bold=True, align=center)
    if content.signer_title:
        _line(right, content.signer_title, bold=True, align=center)
    for _ in range(4):  # room for the signature and the seal
        _line(right, "", align=center)
    _line(right, content.signer_name or " ", bold=True, align=center)
