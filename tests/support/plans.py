"""Small plans for tests, built in code: only what a test is about is spelled out.

``make_plan`` fills the plan's header (title, issuer, effective date...) with harmless defaults
and validates the whole as :class:`contracts.plan.Plan`, exactly as a plan file is. The helpers
return plain data in the plan file's shape, so a test's units, tasks, indicators and schedule
read like the YAML they stand for.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from contracts.plan import Plan
from contracts.plan.v1 import is_v1, upgrade

Data = dict[str, Any]

HEADER: Data = {
    "title": "Kế hoạch thử",
    "issuer": "UBND huyện Thử",
    "issuer_place": "Thử",
    "effective_from": "2026-01-01",
    "upward_recipient": "UBND tỉnh",
}


def make_plan(**fields: Any) -> Plan:
    """A validated plan from :func:`plan_data`'s fields; ``schedule`` defaults to the six-month
    report alone, any other plan field can be given (``effective_from="2025-01-01"``...)."""
    raw = plan_data(**fields)
    # The helpers speak format 1 unless a test passes format=2: both load, as files do.
    return Plan.model_validate(upgrade(raw) if is_v1(raw) else raw)


def ladder_plan(plan_id: str) -> Plan:
    """An office and two communes, the six-month report with the default working-day ladder
    (open 30 days before the due day, locked 15 after)."""
    ladder: dict[str, Any] = {}
    return make_plan(
        plan_id=plan_id,
        consolidating_unit_id="van-phong",
        effective_from="2026-06-01",
        units=[
            unit("van-phong", "Văn phòng", "specialised_office", reports=False),
            unit("xa-a", "UBND xã A", "commune"),
            unit("xa-b", "UBND xã B", "commune"),
        ],
        tasks=[task("nv-1", "II.1", "Nhiệm vụ", ["xa-a", "xa-b"], text="Làm")],
        schedule=[six_months(opens_days_before_due=30, closes_days_after_due=15, reminders=ladder)],
    )


def plan_data(
    *,
    plan_id: str,
    consolidating_unit_id: str,
    units: Sequence[Data],
    tasks: Sequence[Data],
    indicators: Sequence[Data] = (),
    schedule: Sequence[Data] | None = None,
    **header: Any,
) -> Data:
    """What :func:`make_plan` validates, as plain data: a plan file's content, for tests that
    write the file the services load."""
    return {
        **HEADER,
        "id": plan_id,
        "consolidating_unit_id": consolidating_unit_id,
        **header,
        "units": list(units),
        "indicators": list(indicators),
        "tasks": list(tasks),
        "schedule": list(schedule) if schedule is not None else [six_months()],
    }


def unit(unit_id: str, name: str, kind: str, **fields: Any) -> Data:
    """A unit; ``fields`` adds the rest (``reports=False``, ``contacts=[...]``)."""
    return {"id": unit_id, "name": name, "kind": kind, **fields}


def indicator(code: str, name: str, unit_of_measure: str) -> Data:
    return {"code": code, "name": name, "unit_of_measure": unit_of_measure}


def task(
    task_id: str,
    section: str,
    title: str,
    units: Iterable[str],
    *,
    cooperating: Iterable[str] = (),
    indicator_codes: Sequence[str] = (),
    text: str = "...",
) -> Data:
    """A task assigned to ``units`` in that order, as lead unless listed in ``cooperating``."""
    helpers = set(cooperating)
    return {
        "id": task_id,
        "section": section,
        "title": title,
        "text": text,
        "assignments": [
            {"unit_id": u, "role": "cooperating"} if u in helpers else {"unit_id": u} for u in units
        ],
        "indicator_codes": list(indicator_codes),
    }


def report_kind(
    code: str, title: str, *, due_before: str, data_from: str, data_to: str, **fields: Any
) -> Data:
    """One recurring report; ``fields`` adds the rest (``opens_days_before_due=5``...)."""
    return {
        "code": code,
        "title": title,
        "due_before": due_before,
        "data_from": data_from,
        "data_to": data_to,
        **fields,
    }


def six_months(**fields: Any) -> Data:
    """The six-month report, due before 15 June on data from 15 December of the year before."""
    return report_kind(
        "6-thang",
        "Báo cáo 6 tháng",
        due_before="06-15",
        data_from="12-15",
        data_to="06-14",
        data_from_previous_year=True,
        **fields,
    )


def three_units_plan(plan_id: str = "kh-tich-hop") -> Plan:
    """An office and two communes, all reporting on one task, six-monthly (due before 15 June)."""
    return make_plan(
        plan_id=plan_id,
        consolidating_unit_id="van-phong",
        effective_from="2025-01-01",
        units=[
            unit("van-phong", "Văn phòng HĐND và UBND", "specialised_office"),
            unit("xa-a", "UBND xã A", "commune"),
            unit("xa-b", "UBND xã B", "commune"),
        ],
        tasks=[task("nv-1", "II.1", "Nhiệm vụ", ["van-phong", "xa-a", "xa-b"], text="Làm việc")],
    )
