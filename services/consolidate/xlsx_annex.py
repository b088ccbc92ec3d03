"""The annex of the district report as an XLSX workbook, one table per sheet.

Figures stay numbers (a clerk sums and filters them), with Vietnamese headers, frozen header
rows, filters and widths that fit the text. Sheets: the units' reporting status, the indicator
totals (also per unit kind), and every unit's answer behind each indicator.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterable, Sequence

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from contracts.events import ReportConsolidatedPayload
from contracts.plan import KIND_LABELS, Plan
from services.consolidate.content import AGGREGATION_LABELS, UNIT_STATUS_LABELS

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHEETS = ("Tình hình báo cáo", "Tổng hợp chỉ tiêu", "Chỉ tiêu theo đơn vị")
HEADER_FILL = PatternFill("solid", fgColor="DDE6F0")
Cell = str | int | float | dt.datetime | None


def render(payload: ReportConsolidatedPayload, plan: Plan) -> bytes:
    workbook = Workbook()
    status = workbook.active
    assert status is not None
    status.title = SHEETS[0]
    _status(status, payload, plan)
    _totals(workbook.create_sheet(SHEETS[1]), payload)
    _per_unit(workbook.create_sheet(SHEETS[2]), payload, plan)
    workbook.properties.title = payload.title
    workbook.properties.creator = "baocao"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _table(
    sheet: Worksheet,
    title: str,
    header: Sequence[str],
    rows: Iterable[Sequence[Cell]],
    formats: dict[int, str] | None = None,
) -> None:
    sheet.append([title])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append(list(header))
    for cell in sheet[2]:
        cell.font = Font(bold=True)
        cell.fill = HEADER_FILL
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    widths = [len(h) for h in header]
    for row in rows:
        sheet.append(list(row))
        for n, value in enumerate(row):
            widths[n] = max(widths[n], min(len(str(value or "")), 60))
    for column, fmt in (formats or {}).items():
        for (cell,) in sheet.iter_rows(min_row=3, min_col=column, max_col=column):
            cell.number_format = fmt
    for n, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(n)].width = width + 2
    sheet.freeze_panes = "A3"
    sheet.auto_filter.ref = f"A2:{get_column_letter(len(header))}{max(sheet.max_row, 2)}"


def _status(sheet: Worksheet, payload: ReportConsolidatedPayload, plan: Plan) -> None:
    kinds = {u.id: KIND_LABELS[u.kind] for u in plan.units}
    tz = plan.tz
    _table(
        sheet,
        f"{payload.title}: tình hình báo cáo của các đơn vị",
        ("STT", "Đơn vị", "Loại đơn vị", "Tình trạng", "Số tiếp nhận", "Nhận lúc", "Lần gửi"),
        (
            (
                n,
                u.unit_name,
                kinds.get(u.unit_id, ""),
                UNIT_STATUS_LABELS[u.status],
                u.receipt_no or "",
                u.last_received_at.astimezone(tz).replace(tzinfo=None)
                if u.last_received_at
                else None,
                u.revision,
            )
            for n, u in enumerate(payload.units, start=1)
        ),
        {6: "dd/mm/yyyy hh:mm"},
    )


def _totals(sheet: Worksheet, payload: ReportConsolidatedPayload) -> None:
    rows: list[Sequence[Cell]] = []
    for total in payload.indicator_totals:
        rows.append(
            (
                total.name,
                "Tất cả đơn vị",
                total.unit_of_measure,
                AGGREGATION_LABELS.get(total.aggregation, total.aggregation),
                total.value,
                total.reporting_units,
            )
        )
        rows += [
            (total.name, k.label, total.unit_of_measure, "", k.value, k.reporting_units)
            for k in total.by_kind
        ]
    _table(
        sheet,
        f"{payload.title}: tổng hợp chỉ tiêu",
        ("Chỉ tiêu", "Nhóm đơn vị", "Đơn vị tính", "Cách tổng hợp", "Kết quả", "Số đơn vị"),
        rows,
        {5: "#,##0.##", 6: "0"},
    )


def _per_unit(sheet: Worksheet, payload: ReportConsolidatedPayload, plan: Plan) -> None:
    names = {u.id: u.name for u in plan.units}
    kinds = {u.id: KIND_LABELS[u.kind] for u in plan.units}
    tasks = {t.id: t.section for t in plan.tasks}
    rows: list[Sequence[Cell]] = [
        (
            total.name,
            names.get(v.unit_id, v.unit_id),
            kinds.get(v.unit_id, ""),
            tasks.get(v.task_id, v.task_id),
            _answer(v.value, v.flag, v.text),
            total.unit_of_measure,
        )
        for total in payload.indicator_totals
        for v in total.values
    ]
    _table(
        sheet,
        f"{payload.title}: số liệu từng đơn vị",
        ("Chỉ tiêu", "Đơn vị", "Loại đơn vị", "Nhiệm vụ", "Giá trị", "Đơn vị tính"),
        rows,
        {5: "#,##0.##"},
    )


def _answer(value: float | None, flag: bool | None, text: str | None) -> Cell:
    if text is not None:
        return text
    if flag is not None:
        return "Có" if flag else "Không"
    return value
