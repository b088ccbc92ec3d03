"""Reference data: plans, units, groups, indicators, tasks and schedules (format 2).

``python -m contracts.plan check FILE…`` checks plan files and prints every problem with its
file, line and path. Format 1 files load too (``contracts.plan.v1`` converts them).
"""

from contracts.plan.model import (
    FORMAT,
    KIND_LABELS,
    OCCURRENCES,
    Aggregation,
    Assignment,
    Contact,
    Indicator,
    IndicatorType,
    LegalBasis,
    Plan,
    PlanError,
    ReferenceModel,
    ReportKind,
    ResolvedAssignment,
    ScheduleRule,
    Signer,
    Task,
    TaskIndicator,
    Unit,
    UnitGroup,
    UnitKind,
    WorkingCalendarChanges,
)

__all__ = [
    "FORMAT",
    "KIND_LABELS",
    "OCCURRENCES",
    "Aggregation",
    "Assignment",
    "Contact",
    "Indicator",
    "IndicatorType",
    "LegalBasis",
    "Plan",
    "PlanError",
    "ReferenceModel",
    "ReportKind",
    "ResolvedAssignment",
    "ScheduleRule",
    "Signer",
    "Task",
    "TaskIndicator",
    "Unit",
    "UnitGroup",
    "UnitKind",
    "WorkingCalendarChanges",
]
