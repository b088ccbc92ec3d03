"""Report bodies as units would file them: one per reporting unit, from the service's template."""

from __future__ import annotations

import json
from dataclasses import dataclass

from bench.auth import bearer
from bench.http import Connection
from bench.system import OPEN_PERIOD, SEED_PLAN
from services.common.auth import Role
from services.common.reference import load_plan

RESULTS_TEXT = (
    "Tổ chức {n} buổi quán triệt, tuyên truyền Nghị quyết 35-NQ/TW cho cán bộ, đảng viên và "
    "nhân dân; đăng tải tin, bài trên trang thông tin điện tử; phối hợp với các đoàn thể "
    "nắm bắt tình hình tư tưởng, kịp thời định hướng dư luận xã hội trên địa bàn."
)


class PeriodNotOpen(Exception):
    """The benchmark's period does not accept reports at the system's clock."""


@dataclass(frozen=True)
class Workload:
    period_id: str
    bodies: tuple[tuple[str, bytes], ...]
    """(unit_id, JSON body) for every reporting unit of the seed plan."""
    receipts_per_report: dict[str, int]
    """How many receipt e-mails a report of each unit causes (one per e-mail contact)."""

    def body(self, i: int) -> bytes:
        return self.bodies[i % len(self.bodies)][1]

    def unit(self, i: int) -> str:
        return self.bodies[i % len(self.bodies)][0]

    def headers(self, i: int) -> dict[str, str]:
        """The sign-in of the officer of report ``i``'s unit."""
        return bearer(Role.OFFICER, self.unit(i))

    @classmethod
    async def fetch(cls, port: int, period_id: str = OPEN_PERIOD) -> Workload:
        plan = load_plan(SEED_PLAN)
        connection = Connection(port, bearer(Role.ADMIN))
        try:
            open_ids = [p["period_id"] for p in await connection.get_json("/api/v1/periods")]
            if period_id not in open_ids:
                raise PeriodNotOpen(f"{period_id} is not open; open: {open_ids}")
            bodies = []
            for unit in plan.reporting_units():
                path = f"/api/v1/periods/{period_id}/units/{unit.id}/template"
                bodies.append((unit.id, _filled(await connection.get_json(path))))
        finally:
            await connection.close()
        receipts = {
            unit.id: sum(1 for c in unit.contacts if c.email and "email" in c.receives)
            for unit in plan.reporting_units()
        }
        return cls(period_id, tuple(bodies), receipts)


def _filled(template: dict[str, object]) -> bytes:
    tasks = template["tasks"]
    assert isinstance(tasks, list)
    for n, task in enumerate(tasks, start=1):
        task["status"] = "completed"
        task["results"] = RESULTS_TEXT.format(n=n + 2)
        for indicator in task["indicators"]:
            indicator["value"] = n + 3
    template["submitted_by"] = {"name": "Nguyễn Thị Hà", "email": None}
    return json.dumps(template, ensure_ascii=False).encode()
