"""Reference data, format 2: a plan, the units it names, its tasks, indicators and schedule.

A plan file (YAML or JSON, see ``data/plans/`` and ``docs/plans.md``) is validated by
:class:`Plan`. Everything a service knows about units, contacts, tasks and deadlines comes
from such files, so another plan or another administrative hierarchy is a new file, not new
code. The models are strict (``extra="forbid"``): a typo in hand-written data fails at load
time, with the file, the line and a Vietnamese explanation (``contracts.plan.loading``).
Format 1 files still load: ``contracts.plan.v1`` converts them.

Only what a plan's text says is required; everything else has a default.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

Slug = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*[a-z0-9]$", max_length=64)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$", max_length=254)]
Phone = Annotated[str, Field(pattern=r"^\+?[0-9][0-9 .-]{6,18}[0-9]$")]
MonthDay = Annotated[str, Field(pattern=r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
"""A day of the year as ``MM-DD``; the year comes from the period."""

FORMAT: Literal[2] = 2


class ReferenceModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class PlanError(ValueError):
    """A mistake in a plan's data; ``path`` says where (e.g. ``tasks.3.assignments.1``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


# --- units and groups -------------------------------------------------------------------


class UnitKind(StrEnum):
    """What sort of body a unit is. Kinds drive grouping in reports, never code paths."""

    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"
    WARD = "ward"
    TOWN = "town"
    SPECIAL_ZONE = "special_zone"
    DEPARTMENT = "department"
    SPECIALISED_OFFICE = "specialised_office"
    BOARD = "board"
    SECTOR_AGENCY = "sector_agency"
    PARTY_BOARD = "party_board"
    FATHERLAND_FRONT = "fatherland_front"
    MASS_ORGANISATION = "mass_organisation"
    ASSOCIATION = "association"
    PUBLIC_SERVICE_UNIT = "public_service_unit"
    POLICE = "police"
    MILITARY = "military"
    OTHER = "other"


KIND_LABELS: dict[UnitKind, str] = {
    UnitKind.PROVINCE: "UBND tỉnh, thành phố trực thuộc Trung ương",
    UnitKind.DISTRICT: "UBND huyện, quận, thị xã, thành phố thuộc tỉnh",
    UnitKind.COMMUNE: "UBND xã",
    UnitKind.WARD: "UBND phường",
    UnitKind.TOWN: "UBND thị trấn",
    UnitKind.SPECIAL_ZONE: "UBND đặc khu",
    UnitKind.DEPARTMENT: "Sở, cơ quan ngang sở",
    UnitKind.SPECIALISED_OFFICE: "Phòng chuyên môn",
    UnitKind.BOARD: "Ban, ban quản lý",
    UnitKind.SECTOR_AGENCY: "Cơ quan ngành dọc",
    UnitKind.PARTY_BOARD: "Ban, văn phòng cấp ủy Đảng",
    UnitKind.FATHERLAND_FRONT: "Ủy ban Mặt trận Tổ quốc Việt Nam",
    UnitKind.MASS_ORGANISATION: "Tổ chức chính trị - xã hội",
    UnitKind.ASSOCIATION: "Hội",
    UnitKind.PUBLIC_SERVICE_UNIT: "Đơn vị sự nghiệp công lập",
    UnitKind.POLICE: "Công an",
    UnitKind.MILITARY: "Cơ quan quân sự",
    UnitKind.OTHER: "Đơn vị khác",
}
"""Vietnamese label of each kind, plural-neutral, as a report heading would print it."""


Channel = Literal["email", "sms"]
Role = Literal["lead", "cooperating"]
Mode = Literal["assigned", "requested"]


def _email_only() -> list[Channel]:
    return ["email"]


def _both_roles() -> list[Role]:
    return ["lead", "cooperating"]


class Contact(ReferenceModel):
    """A unit's contact officer: the only personal data baocao keeps."""

    name: str = Field(min_length=1, max_length=120)
    role: str | None = None
    """The position as printed (e.g. 'Chuyên viên', 'Trưởng phòng')."""
    duty: Literal["officer", "head"] = "officer"
    """``officer`` files and is reminded; ``head`` is told when reminders escalate."""
    email: Email | None = None
    phone: Phone | None = None
    receives: list[Channel] = Field(default_factory=_email_only)


class Unit(ReferenceModel):
    id: Slug
    name: str = Field(min_length=1, max_length=200)
    short_name: str | None = None
    kind: UnitKind
    parent_id: Slug | None = None
    """The body above it in the administrative tree (a commune's district, a Sở's province)."""
    reports: bool = True
    """False for bodies that only receive the plan (e.g. the issuing committee itself)."""
    contacts: list[Contact] = Field(default_factory=list)


class UnitGroup(ReferenceModel):
    """Named units ("all communes"): every unit matching the selectors, plus those listed.

    ``kinds`` and ``parent_id`` together select units of those kinds under that parent.
    Expanded when the plan loads, so a unit added to the data joins every assignment of its
    group without touching the tasks.
    """

    id: Slug
    name: str
    kinds: list[UnitKind] = Field(default_factory=list)
    parent_id: Slug | None = None
    units: list[Slug] = Field(default_factory=list)

    @model_validator(mode="after")
    def _selects_something(self) -> UnitGroup:
        if not (self.kinds or self.parent_id or self.units):
            raise ValueError("nhóm phải có ít nhất một tiêu chí: kinds, parent_id hoặc units")
        return self


# --- indicators -------------------------------------------------------------------------


class IndicatorType(StrEnum):
    COUNT = "count"
    """A non-negative whole number (buổi, tin bài, lượt)."""
    NUMBER = "number"
    """A quantity with a unit of measure (triệu đồng, km)."""
    PERCENTAGE = "percentage"
    """0 to 100; never summed."""
    BOOLEAN = "boolean"
    """Yes or no (đã ban hành kế hoạch?)."""
    TEXT = "text"
    """A short text, listed unit by unit."""


class Aggregation(StrEnum):
    SUM = "sum"
    MEAN = "mean"
    WEIGHTED_MEAN = "weighted_mean"
    MIN = "min"
    MAX = "max"
    COUNT_YES = "count_yes"
    LIST = "list"


_ALLOWED_AGGREGATIONS: dict[IndicatorType, set[Aggregation]] = {
    IndicatorType.COUNT: {Aggregation.SUM, Aggregation.MEAN, Aggregation.MIN, Aggregation.MAX},
    IndicatorType.NUMBER: {
        Aggregation.SUM,
        Aggregation.MEAN,
        Aggregation.WEIGHTED_MEAN,
        Aggregation.MIN,
        Aggregation.MAX,
    },
    IndicatorType.PERCENTAGE: {
        Aggregation.MEAN,
        Aggregation.WEIGHTED_MEAN,
        Aggregation.MIN,
        Aggregation.MAX,
    },
    IndicatorType.BOOLEAN: {Aggregation.COUNT_YES, Aggregation.LIST},
    IndicatorType.TEXT: {Aggregation.LIST},
}
_DEFAULT_AGGREGATION = {
    IndicatorType.COUNT: Aggregation.SUM,
    IndicatorType.NUMBER: Aggregation.SUM,
    IndicatorType.PERCENTAGE: Aggregation.MEAN,
    IndicatorType.BOOLEAN: Aggregation.COUNT_YES,
    IndicatorType.TEXT: Aggregation.LIST,
}


class Indicator(ReferenceModel):
    """A figure units report per task, and how the consolidating office combines it."""

    code: Slug
    name: str
    type: IndicatorType = IndicatorType.COUNT
    unit_of_measure: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    aggregation: Aggregation | None = None
    """Default: sum for counts and numbers, mean for percentages, count of yes, list."""
    weight: Slug | None = None
    """For ``weighted_mean``: the indicator (a count or number) each unit's value is weighted
    by, e.g. the number of households a coverage percentage is of."""
    max_length: int = Field(500, ge=1, le=20_000)
    """For text: the longest accepted answer."""

    @model_validator(mode="after")
    def _consistent(self) -> Indicator:
        aggregation = self.aggregation or _DEFAULT_AGGREGATION[self.type]
        if aggregation not in _ALLOWED_AGGREGATIONS[self.type]:
            raise ValueError(
                f"chỉ tiêu loại {self.type.value} không tổng hợp theo cách "
                f"“{aggregation.value}” (tỷ lệ phần trăm không bao giờ được cộng dồn)"
            )
        if (aggregation is Aggregation.WEIGHTED_MEAN) != (self.weight is not None):
            raise ValueError("weighted_mean cần weight (chỉ tiêu làm trọng số) và ngược lại")
        low, high = self.bounds
        if low is not None and high is not None and low > high:
            raise ValueError(f"minimum ({low}) lớn hơn maximum ({high})")
        return self

    @property
    def how(self) -> Aggregation:
        return self.aggregation or _DEFAULT_AGGREGATION[self.type]

    @property
    def bounds(self) -> tuple[float | None, float | None]:
        """The accepted range, with the type's own limits (counts ≥ 0, percentages 0–100)."""
        low, high = self.minimum, self.maximum
        if self.type in (IndicatorType.COUNT, IndicatorType.PERCENTAGE):
            low = 0.0 if low is None else max(low, 0.0)
        if self.type is IndicatorType.PERCENTAGE:
            high = 100.0 if high is None else min(high, 100.0)
        return low, high


# --- tasks ------------------------------------------------------------------------------


class Assignment(ReferenceModel):
    """Who a task is given to: one unit (``unit_id``) or every unit of a group (``group_id``)."""

    unit_id: Slug | None = None
    group_id: Slug | None = None
    mode: Mode = "assigned"
    """``assigned`` (giao): a body under the issuing authority; ``requested`` (đề nghị): a
    body the authority can only ask, such as a Party board or the Fatherland Front."""
    role: Role = "lead"
    """``lead`` (chủ trì) or ``cooperating`` (phối hợp)."""

    @model_validator(mode="after")
    def _one_target(self) -> Assignment:
        if (self.unit_id is None) == (self.group_id is None):
            raise ValueError("mỗi phân công ghi đúng một trong hai: unit_id hoặc group_id")
        return self


class TaskIndicator(ReferenceModel):
    """An indicator a task asks for, and of whom."""

    code: Slug
    required: bool = False
    roles: list[Role] = Field(default_factory=_both_roles)
    unit_kinds: list[UnitKind] = Field(default_factory=list)
    """Empty: every kind."""


class ResolvedAssignment(ReferenceModel):
    """An assignment after groups were expanded: one unit, its mode and role."""

    unit_id: Slug
    mode: Mode
    role: Role


class Task(ReferenceModel):
    id: Slug
    section: str = Field(pattern=r"^[IVX]+(\.\d+)*$", description="e.g. II.3")
    title: str = ""
    """Defaults to the task's own wording (``text``)."""
    text: str
    assignments: list[Assignment] = Field(min_length=1)
    indicators: list[TaskIndicator] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _title_from_text(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("title") and data.get("text"):
            return {**data, "title": str(data["text"]).strip()}
        return data

    @property
    def indicator_codes(self) -> list[str]:
        return [i.code for i in self.indicators]


# --- the schedule -----------------------------------------------------------------------


class ScheduleRule(StrEnum):
    YEARLY = "yearly"
    SIX_MONTHLY = "six_monthly"
    QUARTERLY = "quarterly"
    MONTHLY = "monthly"
    ONCE = "once"


OCCURRENCES = {
    ScheduleRule.YEARLY: [1],
    ScheduleRule.SIX_MONTHLY: [1, 2],
    ScheduleRule.QUARTERLY: [1, 2, 3, 4],
    ScheduleRule.MONTHLY: list(range(1, 13)),
    ScheduleRule.ONCE: [1],
}
MONTHS_PER_OCCURRENCE = {
    ScheduleRule.SIX_MONTHLY: 6,
    ScheduleRule.QUARTERLY: 3,
    ScheduleRule.MONTHLY: 1,
}


class Audience(StrEnum):
    """Whom a reminder reaches, by role; the contacts come from the unit and the plan."""

    OFFICER = "officer"
    """The reporting unit's contacts (the officer who files)."""
    UNIT_HEAD = "unit_head"
    """The head of the reporting unit."""
    OFFICE = "office"
    """The consolidating office."""
    LEADERSHIP = "leadership"
    """The district's leadership."""


class Rung(ReferenceModel):
    """One reminder: a number of working days before the due day (0: on the due day) or,
    for an overdue notice, after it; and whom it reaches."""

    working_days_before_due: int | None = Field(None, ge=0, le=100)
    working_days_after_due: int | None = Field(None, ge=1, le=100)
    reaches: list[Audience] = Field(default_factory=lambda: [Audience.OFFICER], min_length=1)

    @model_validator(mode="after")
    def _one_side(self) -> Rung:
        if (self.working_days_before_due is None) == (self.working_days_after_due is None):
            raise ValueError(
                "mỗi bậc nhắc cần đúng một trong working_days_before_due, working_days_after_due"
            )
        return self

    @property
    def overdue(self) -> bool:
        return self.working_days_after_due is not None

    @property
    def id(self) -> str:
        """What names the rung in emission keys and events ('b14', 'b0', 'a1')."""
        if self.working_days_after_due is not None:
            return f"a{self.working_days_after_due}"
        return f"b{self.working_days_before_due}"


def _default_rungs() -> list[Rung]:
    officer, head = Audience.OFFICER, Audience.UNIT_HEAD
    escalation = [officer, head, Audience.OFFICE, Audience.LEADERSHIP]
    return [
        Rung(working_days_before_due=14, reaches=[officer]),
        Rung(working_days_before_due=7, reaches=[officer]),
        Rung(working_days_before_due=3, reaches=[officer, head]),
        Rung(working_days_before_due=1, reaches=[officer, head]),
        Rung(working_days_before_due=0, reaches=[officer, head]),
        Rung(working_days_after_due=1, reaches=escalation),
    ]


class ReminderLadder(ReferenceModel):
    """The reminders of a report kind, counted in working days (``contracts.plan.workdays``).

    The due day is the last local day a report is on time (the day before ``due_before``).
    Every rung is sent at ``send_at`` local time on a working day: a rung that would fall on
    a day off moves to the working day before it. After the last overdue rung, an overdue
    notice repeats every ``overdue_every_days`` days (0: never) until the period locks.
    """

    rungs: list[Rung] = Field(default_factory=_default_rungs, min_length=1)
    overdue_every_days: int = Field(7, ge=0, le=366)
    send_at: dt.time = dt.time(8, 0)

    @model_validator(mode="after")
    def _distinct(self) -> ReminderLadder:
        ids = [r.id for r in self.rungs]
        if len(set(ids)) != len(ids):
            raise ValueError("các bậc nhắc không được trùng nhau")
        return self


class ReportKind(ReferenceModel):
    """One recurring report and the rule that places its periods in time.

    - ``yearly``: due before ``due_before`` (``MM-DD``) each year, data window ``data_from``
      to ``data_to`` (format 1's only rule).
    - ``six_monthly``, ``quarterly``, ``monthly``: due before day ``due_day`` of the last
      month of each half, quarter or month (``due_month: following``: of the month after),
      for the ``occurrences`` listed (default all); the data window follows Decree
      09/2019/NĐ-CP: from the day after day ``cutoff_day`` of the last month of the previous
      period to day ``cutoff_day`` of the last month of this one.
    - ``once``: due before ``due_on``, data window ``data_from_date`` to ``data_to_date``.

    Every period opens ``opens_days_before_due`` days before it is due and locks
    ``closes_days_after_due`` days after; late reports are accepted until the lock.
    """

    code: Slug
    title: str = Field(description="e.g. 'Báo cáo 6 tháng', 'Báo cáo quý'")
    rule: ScheduleRule = ScheduleRule.YEARLY
    due_before: MonthDay | None = None
    """``yearly``: the local day the report must arrive *before* ('trước 15/6' is ``06-15``)."""
    due_in_following_year: bool = False
    data_from: MonthDay | None = None
    data_from_previous_year: bool = False
    data_to: MonthDay | None = None
    due_day: int | None = Field(None, ge=1, le=31)
    due_month: Literal["last", "following"] = "last"
    occurrences: list[int] | None = None
    cutoff_day: int = Field(14, ge=1, le=28)
    due_on: dt.date | None = None
    data_from_date: dt.date | None = None
    data_to_date: dt.date | None = None
    opens_days_before_due: int = Field(30, ge=0, le=366)
    closes_days_after_due: int = Field(15, ge=0, le=366)
    reminder_days_before_due: list[int] = Field(default_factory=lambda: [7, 3, 1])
    """Calendar days; used when the kind has no ``reminders`` ladder (format 2's first form)."""
    reminders: ReminderLadder | None = None
    """Reminders in working days, with escalation (``{}`` for the default ladder)."""

    @field_validator("reminder_days_before_due")
    @classmethod
    def _positive_and_distinct(cls, days: list[int]) -> list[int]:
        if any(d <= 0 for d in days) or len(set(days)) != len(days):
            raise ValueError("số ngày nhắc trước hạn phải dương và không trùng nhau")
        return sorted(days, reverse=True)

    # Checked field by field (not in the rule check below) so that the error names the field
    # and its own line in the file, whatever the rule.
    @field_validator("due_before", "data_from", "data_to")
    @classmethod
    def _day_exists(cls, text: str | None) -> str | None:
        if text is not None:
            _check_month_day(text)
        return text

    @field_validator("due_day")
    @classmethod
    def _in_every_month(cls, day: int | None) -> int | None:
        if day is not None and day > 28:
            # Day 29-31 does not exist in every month: refused rather than guessed.
            raise ValueError(f"ngày {day} không có ở mọi tháng; hãy chọn ngày từ 1 đến 28")
        return day

    @model_validator(mode="after")
    def _rule_is_complete(self) -> ReportKind:
        rule = self.rule
        needs: dict[ScheduleRule, tuple[str, ...]] = {
            ScheduleRule.YEARLY: ("due_before", "data_from", "data_to"),
            ScheduleRule.ONCE: ("due_on", "data_from_date", "data_to_date"),
        }
        for name in needs.get(rule, ("due_day",)):
            if getattr(self, name) is None:
                raise ValueError(f"quy tắc “{rule.value}” cần trường {name}")
        if rule in MONTHS_PER_OCCURRENCE:
            allowed = OCCURRENCES[rule]
            chosen = self.occurrences or allowed
            wrong = [n for n in chosen if n not in allowed]
            if wrong or len(set(chosen)) != len(chosen):
                raise ValueError(f"occurrences phải là các số khác nhau trong {allowed}")
        # Imported here: the schedule arithmetic builds on this module's models.
        from contracts.plan.schedule import occurrences, order_problem

        # A common and a leap year: every day a rule can give falls in one of them.
        years = [self.due_on.year] if self.due_on else [2027, 2028]
        for year in years:
            for occurrence in occurrences(self, year):
                problem = order_problem(self, occurrence)
                if problem:
                    raise ValueError(problem)
        return self


def _check_month_day(text: str) -> None:
    month, day = (int(x) for x in text.split("-"))
    if (month, day) == (2, 29):
        raise ValueError("ngày 29/02 chỉ có trong năm nhuận; hãy chọn 28/02 hoặc 01/03")
    try:
        dt.date(2001, month, day)
    except ValueError:
        raise ValueError(f"ngày {day:02d}/{month:02d} không tồn tại") from None


# --- the plan ---------------------------------------------------------------------------


class LegalBasis(ReferenceModel):
    """A document the plan implements (căn cứ)."""

    number: str
    date: dt.date | None = None
    issuer: str
    title: str | None = None


class Signer(ReferenceModel):
    authority: str = Field(description="e.g. 'TM. ỦY BAN NHÂN DÂN\\nKT. CHỦ TỊCH'")
    title: str
    name: str | None = None
    """Left empty when the plan text does not print it; the signer writes it."""


class WorkingCalendarChanges(ReferenceModel):
    """Days this plan's offices work or do not, beyond the national calendar and its yearly
    swaps (``contracts.plan.workdays``): e.g. a province's own day off."""

    days_off: list[dt.date] = Field(default_factory=list)
    working_days: list[dt.date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _not_both(self) -> WorkingCalendarChanges:
        both = sorted(set(self.days_off) & set(self.working_days))
        if both:
            days = ", ".join(f"{d:%d/%m/%Y}" for d in both)
            raise ValueError(f"ngày vừa là ngày nghỉ vừa là ngày làm việc: {days}")
        return self


class Plan(ReferenceModel):
    format: Literal[2] = FORMAT
    id: Slug
    number: str | None = None
    title: str
    issuer: str
    issuer_place: str = Field(description="place name printed before the date, e.g. 'Ngọc Hồi'")
    issued_on: dt.date | None = None
    timezone: str = "Asia/Ho_Chi_Minh"
    effective_from: dt.date | None = None
    effective_until: dt.date | None = None
    implements: list[LegalBasis] = Field(default_factory=list)
    consolidating_unit_id: Slug
    upward_recipient: str
    recipients: list[str] = Field(default_factory=list, description="'Nơi nhận'")
    signer: Signer | None = None
    units: list[Unit] = Field(min_length=1)
    groups: list[UnitGroup] = Field(default_factory=list)
    indicators: list[Indicator] = Field(default_factory=list)
    tasks: list[Task] = Field(min_length=1)
    schedule: list[ReportKind] = Field(min_length=1)
    working_calendar: WorkingCalendarChanges = Field(default_factory=WorkingCalendarChanges)

    _assignments: dict[str, list[ResolvedAssignment]] = PrivateAttr(default_factory=dict)
    _members: dict[str, list[str]] = PrivateAttr(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"múi giờ “{name}” không tồn tại") from error
        return name

    @model_validator(mode="after")
    def _references_resolve(self) -> Plan:
        problems = reference_problems(self)
        if problems:
            # Every problem at once, each with its path: a clerk fixes the file in one go.
            raise ValueError("\n".join(f"{p.path}: {p.message}" for p in problems))
        self._members = {g.id: group_members(self, g) for g in self.groups}
        self._assignments = {t.id: self._expand(t) for t in self.tasks}
        return self

    def _expand(self, task: Task) -> list[ResolvedAssignment]:
        expanded: list[ResolvedAssignment] = []
        for a in task.assignments:
            ids = [a.unit_id] if a.unit_id else self._members[a.group_id or ""]
            expanded += [ResolvedAssignment(unit_id=u, mode=a.mode, role=a.role) for u in ids]
        return expanded

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def unit(self, unit_id: str) -> Unit | None:
        return next((u for u in self.units if u.id == unit_id), None)

    def overseen_by(self, unit_id: str | None) -> bool:
        """Whether ``unit_id`` is the plan's consolidating unit or a unit above it in the
        plan's hierarchy (``parent_id``), which oversees its work: whose office staff act on
        this plan."""
        seen: set[str] = set()
        current = self.unit(self.consolidating_unit_id)
        while current is not None and current.id not in seen:
            if current.id == unit_id:
                return True
            seen.add(current.id)
            current = self.unit(current.parent_id) if current.parent_id else None
        return False

    def indicator(self, code: str) -> Indicator | None:
        return next((i for i in self.indicators if i.code == code), None)

    def members(self, group_id: str) -> list[str]:
        return list(self._members.get(group_id, []))

    def assignments(self, task_id: str) -> list[ResolvedAssignment]:
        """The task's assignments with groups expanded to their units, in file order."""
        return list(self._assignments.get(task_id, []))

    def assignment(self, task_id: str, unit_id: str) -> ResolvedAssignment | None:
        return next((a for a in self.assignments(task_id) if a.unit_id == unit_id), None)

    def tasks_of(self, unit_id: str) -> list[Task]:
        return [t for t in self.tasks if self.assignment(t.id, unit_id)]

    def indicators_for(self, task: Task, unit_id: str) -> list[TaskIndicator]:
        """The indicators ``task`` asks of this unit, by its role and kind."""
        assignment, unit = self.assignment(task.id, unit_id), self.unit(unit_id)
        if assignment is None or unit is None:
            return []
        return [
            i
            for i in task.indicators
            if assignment.role in i.roles and (not i.unit_kinds or unit.kind in i.unit_kinds)
        ]

    def reporting_units(self) -> list[Unit]:
        """Units expected to report: those with at least one task, unless marked otherwise."""
        assigned = {a.unit_id for t in self.tasks for a in self.assignments(t.id)}
        return [u for u in self.units if u.reports and u.id in assigned]


def group_members(plan: Plan, group: UnitGroup) -> list[str]:
    """The units of a group, in the plan's unit order."""
    listed = set(group.units)
    selected: set[str] = set()
    if group.kinds or group.parent_id:
        selected = {
            u.id
            for u in plan.units
            if (not group.kinds or u.kind in group.kinds)
            and (group.parent_id is None or u.parent_id == group.parent_id)
        }
    members = listed | selected  # once: per unit, a plan of 80,000 units took hours to load
    return [u.id for u in plan.units if u.id in members]


def reference_problems(plan: Plan) -> list[PlanError]:
    """Every cross-reference mistake in the plan, each with its path in the file."""
    problems: list[PlanError] = []
    unit_ids = _unique(problems, "units", "đơn vị", [u.id for u in plan.units])
    group_ids = _unique(problems, "groups", "nhóm", [g.id for g in plan.groups])
    _unique(problems, "tasks", "nhiệm vụ", [t.id for t in plan.tasks])
    _unique(problems, "schedule", "loại báo cáo", [k.code for k in plan.schedule])
    codes = _unique(problems, "indicators", "chỉ tiêu", [i.code for i in plan.indicators])
    by_code = {i.code: i for i in plan.indicators}
    if plan.consolidating_unit_id not in unit_ids:
        problems.append(
            PlanError(
                "consolidating_unit_id",
                f"đơn vị tổng hợp “{plan.consolidating_unit_id}” không có trong danh sách units",
            )
        )
    for n, unit in enumerate(plan.units):
        if unit.parent_id is not None and unit.parent_id not in unit_ids:
            problems.append(
                PlanError(f"units.{n}.parent_id", f"đơn vị cấp trên “{unit.parent_id}” không có")
            )
    for n, group in enumerate(plan.groups):
        for k, member in enumerate(group.units):
            if member not in unit_ids:
                problems.append(PlanError(f"groups.{n}.units.{k}", f"đơn vị “{member}” không có"))
        if group.parent_id is not None and group.parent_id not in unit_ids:
            problems.append(
                PlanError(f"groups.{n}.parent_id", f"đơn vị “{group.parent_id}” không có")
            )
        elif not group_members(plan, group):
            problems.append(PlanError(f"groups.{n}", f"nhóm “{group.id}” không có đơn vị nào"))
    for n, indicator in enumerate(plan.indicators):
        if indicator.weight is not None:
            weight = by_code.get(indicator.weight)
            if weight is None or weight.type not in (IndicatorType.COUNT, IndicatorType.NUMBER):
                problems.append(
                    PlanError(
                        f"indicators.{n}.weight",
                        f"trọng số “{indicator.weight}” phải là một chỉ tiêu loại count "
                        "hoặc number của kế hoạch",
                    )
                )
    for n, task in enumerate(plan.tasks):
        reached: dict[str, int] = {}
        for k, a in enumerate(task.assignments):
            where = f"tasks.{n}.assignments.{k}"
            if a.unit_id is not None and a.unit_id not in unit_ids:
                problems.append(PlanError(where, f"đơn vị “{a.unit_id}” không có"))
                continue
            if a.group_id is not None and a.group_id not in group_ids:
                problems.append(PlanError(where, f"nhóm “{a.group_id}” không có"))
                continue
            found = next((g for g in plan.groups if g.id == a.group_id), None)
            ids = [a.unit_id] if a.unit_id else (group_members(plan, found) if found else [])
            for unit_id in ids:
                if unit_id in reached:
                    problems.append(
                        PlanError(
                            where,
                            f"đơn vị “{unit_id}” đã được phân công ở "
                            f"tasks.{n}.assignments.{reached[unit_id]} (trùng phân công)",
                        )
                    )
                else:
                    reached[unit_id] = k
        for k, ti in enumerate(task.indicators):
            if ti.code not in codes:
                problems.append(
                    PlanError(f"tasks.{n}.indicators.{k}", f"chỉ tiêu “{ti.code}” chưa khai báo")
                )
        seen = [ti.code for ti in task.indicators]
        if len(set(seen)) != len(seen):
            problems.append(PlanError(f"tasks.{n}.indicators", "một chỉ tiêu được ghi hai lần"))
    return problems


def _unique(problems: list[PlanError], path: str, what: str, ids: list[str]) -> set[str]:
    seen: set[str] = set()
    for n, i in enumerate(ids):
        if i in seen:
            problems.append(PlanError(f"{path}.{n}", f"mã {what} “{i}” bị trùng"))
        seen.add(i)
    return seen
