"""Loading the plans a deployment runs (reference data, read-only at run time)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from contracts.plan import Plan
from contracts.plan.loading import PlanFileError, Problem, load
from services.common.periods import Period, find_period

__all__ = ["Catalog", "PlanFileError", "load_plan"]


def load_plan(path: Path) -> Plan:
    """The plan in ``path`` (format 1 files are converted), or :class:`PlanFileError`."""
    return load(path)


@dataclass(frozen=True)
class Catalog:
    """Every plan this deployment runs, by id."""

    plans: dict[str, Plan]

    @classmethod
    def load(cls, paths: list[Path]) -> Catalog:
        plans: dict[str, Plan] = {}
        for path in paths:
            plan = load_plan(path)
            if plan.id in plans:
                raise PlanFileError(
                    [Problem(str(path), None, "id", f"kế hoạch “{plan.id}” được nạp hai lần")]
                )
            plans[plan.id] = plan
        if not plans:
            raise PlanFileError(
                [Problem("BAOCAO_PLANS", None, "", "chưa cấu hình tệp kế hoạch nào")]
            )
        return cls(plans)

    def plan(self, plan_id: str) -> Plan | None:
        return self.plans.get(plan_id)

    def period(self, period_id: str) -> tuple[Plan, Period] | None:
        plan = self.plans.get(period_id.partition(".")[0])
        period = find_period(plan, period_id) if plan else None
        return (plan, period) if plan and period else None
