"""Loading the plans a deployment runs (reference data, read-only at run time)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from contracts.plan import Plan
from services.common.periods import Period, find_period


class PlanFileError(Exception):
    """A plan file is missing, unreadable or does not validate."""


def load_plan(path: Path) -> Plan:
    try:
        text = path.read_text(encoding="utf-8")
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        return Plan.model_validate(raw)
    except (OSError, yaml.YAMLError, json.JSONDecodeError, ValidationError) as error:
        raise PlanFileError(f"{path}: {error}") from error


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
                raise PlanFileError(f"{path}: plan id {plan.id!r} is loaded twice")
            plans[plan.id] = plan
        if not plans:
            raise PlanFileError("no plan files configured (BAOCAO_PLANS)")
        return cls(plans)

    def plan(self, plan_id: str) -> Plan | None:
        return self.plans.get(plan_id)

    def period(self, period_id: str) -> tuple[Plan, Period] | None:
        plan = self.plans.get(period_id.partition(".")[0])
        period = find_period(plan, period_id) if plan else None
        return (plan, period) if plan and period else None
