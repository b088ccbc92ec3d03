"""Reference data: a plan, the units it names, its tasks and its reporting schedule.

A plan file (YAML or JSON, see ``data/plans/``) is validated by :class:`Plan`. Everything a
service knows about units, contacts, tasks and deadlines comes from such files, so another plan
or another administrative hierarchy is a new file, not new code. These models are strict
(``extra="forbid"``): a typo in hand-written data must fail loudly at load time.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*[a-z0-9]$", max_length=64)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$", max_length=254)]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9][0-9 .-]{6,18}[0-9]$")]
MonthDay = Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
"""A day of the year as ``MM-DD``; the year comes from the period."""


class ReferenceModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class UnitKind(StrEnum):
    """What sort of body a unit is; drives nothing in code, only grouping in reports."""

    PEOPLES_COMMITTEE = "peoples_committee"  # UBND cấp huyện (the issuing authority)
    SPECIALISED_OFFICE = "specialised_office"  # phòng, ban chuyên môn thuộc UBND
    PARTY_BOARD = "party_board"  # ban, văn phòng của cấp ủy Đảng
    POLICE = "police"  # công an
    PUBLIC_SERVICE_UNIT = "public_service_unit"  # đơn vị sự nghiệp (trung tâm, trang TTĐT)
    FATHERLAND_FRONT = "fatherland_front"  # Ủy ban MTTQ Việt Nam
    MASS_ORGANISATION = "mass_organisation"  # đoàn thể chính trị - xã hội
    ASSOCIATION = "association"  # hội, chi hội
    COMMUNE = "commune"  # UBND xã
    TOWN = "town"  # UBND thị trấn
    WARD = "ward"  # UBND phường
    OTHER = "other"


def _email_only() -> list[Literal["email", "sms"]]:
    return ["email"]


class Contact(ReferenceModel):
    """A unit's contact officer: the only personal data baocao keeps."""

    name: str = Field(min_length=1, max_length=120)
    role: str | None = None
    email: Email | None = None
    phone: Phone | None = None
    receives: list[Literal["email", "sms"]] = Field(default_factory=_email_only)


class Unit(ReferenceModel):
    id: Slug
    name: str = Field(min_length=1, max_length=200)
    short_name: str | None = None
    kind: UnitKind
    parent_id: Slug | None = None
    reports: bool = True
    """False for bodies that only receive the plan (e.g. the issuing committee itself)."""
    contacts: list[Contact] = Field(default_factory=list)


class Assignment(ReferenceModel):
    unit_id: Slug
    mode: Literal["assigned", "requested"] = "assigned"
    """``assigned`` (giao): an office under the issuing authority; ``requested`` (đề nghị): a body
    the authority can only ask, such as a Party board or the Fatherland Front."""
    role: Literal["lead", "cooperating"] = "lead"
    """``lead`` (chủ trì) or ``cooperating`` (phối hợp)."""


class Indicator(ReferenceModel):
    """A figure units report per task, summed by the consolidating office."""

    code: Slug
    name: str
    unit_of_measure: str


class Task(ReferenceModel):
    id: Slug
    section: str = Field(pattern=r"^[IVX]+(\.\d+)*$", description="e.g. II.3")
    title: str
    text: str
    assignments: list[Assignment] = Field(min_length=1)
    indicator_codes: list[Slug] = Field(default_factory=list)


class LegalBasis(ReferenceModel):
    """A document the plan implements (căn cứ)."""

    number: str
    date: dt.date | None = None
    issuer: str
    title: str | None = None


class Signer(ReferenceModel):
    authority: str = Field(description="e.g. 'TM. ỦY BAN NHÂN DÂN\\nKT. CHỦ TỊCH'")
    title: str
    name: str


class ReportKind(ReferenceModel):
    """One recurring report, due every year on the same day (quarterly = four kinds)."""

    code: Slug
    title: str = Field(description="e.g. 'Báo cáo 6 tháng'")
    due_before: MonthDay
    """Local day the report must arrive *before* ('trước 15/6' is ``06-15``)."""
    due_in_following_year: bool = False
    """True when the report on year Y is due in Y+1 (a fourth-quarter report due in January)."""
    data_from: MonthDay
    data_from_previous_year: bool = False
    data_to: MonthDay
    """Data cut-off window (Decree 09/2019), kept apart from the due date on purpose."""
    opens_days_before_due: int = Field(30, ge=0, le=366)
    closes_days_after_due: int = Field(15, ge=0, le=366)
    """Late reports are still accepted until the period closes; then it is consolidated."""
    reminder_days_before_due: list[int] = Field(default_factory=lambda: [7, 3, 1])

    @field_validator("reminder_days_before_due")
    @classmethod
    def _positive_and_distinct(cls, days: list[int]) -> list[int]:
        if any(d <= 0 for d in days) or len(set(days)) != len(days):
            raise ValueError("reminder days must be distinct and positive")
        return sorted(days, reverse=True)


class Plan(ReferenceModel):
    id: Slug
    number: str | None = None
    title: str
    issuer: str
    issuer_place: str = Field(description="place name printed before the date, e.g. 'Ngọc Hồi'")
    issued_on: dt.date | None = None
    timezone: str = "Asia/Ho_Chi_Minh"
    effective_from: dt.date
    effective_until: dt.date | None = None
    implements: list[LegalBasis] = Field(default_factory=list)
    consolidating_unit_id: Slug
    upward_recipient: str
    recipients: list[str] = Field(default_factory=list, description="'Nơi nhận'")
    signer: Signer | None = None
    units: list[Unit] = Field(min_length=1)
    indicators: list[Indicator] = Field(default_factory=list)
    tasks: list[Task] = Field(min_length=1)
    schedule: list[ReportKind] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {name!r}") from error
        return name

    @model_validator(mode="after")
    def _references_resolve(self) -> Plan:
        unit_ids = _unique("unit", [u.id for u in self.units])
        _unique("task", [t.id for t in self.tasks])
        _unique("report kind", [k.code for k in self.schedule])
        codes = _unique("indicator", [i.code for i in self.indicators])
        if self.consolidating_unit_id not in unit_ids:
            raise ValueError(f"consolidating unit {self.consolidating_unit_id!r} is not a unit")
        for unit in self.units:
            if unit.parent_id is not None and unit.parent_id not in unit_ids:
                raise ValueError(f"unit {unit.id!r}: parent {unit.parent_id!r} is not a unit")
        for task in self.tasks:
            for a in task.assignments:
                if a.unit_id not in unit_ids:
                    raise ValueError(f"task {task.id!r}: unit {a.unit_id!r} is not a unit")
            for code in task.indicator_codes:
                if code not in codes:
                    raise ValueError(f"task {task.id!r}: indicator {code!r} is not defined")
        return self

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def unit(self, unit_id: str) -> Unit | None:
        return next((u for u in self.units if u.id == unit_id), None)

    def tasks_of(self, unit_id: str) -> list[Task]:
        return [t for t in self.tasks if any(a.unit_id == unit_id for a in t.assignments)]

    def reporting_units(self) -> list[Unit]:
        """Units expected to report: those with at least one task, unless marked otherwise."""
        assigned = {a.unit_id for t in self.tasks for a in t.assignments}
        return [u for u in self.units if u.reports and u.id in assigned]


def _unique(what: str, ids: list[str]) -> set[str]:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise ValueError(f"duplicate {what} id {i!r}")
        seen.add(i)
    return seen
