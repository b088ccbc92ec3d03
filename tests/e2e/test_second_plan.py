"""The same flow driven by another plan file: another hierarchy (a city and its wards) with a
quarterly schedule. No code differs from the seed plan's run, only the data."""

from __future__ import annotations

import email.header

import pytest

from tests.e2e import flow
from tests.e2e.conftest import System
from tests.support import mailpit
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e

Q2_2027 = "kh-chuyen-doi-so-an-binh.2027.quy-2"


async def test_a_late_quarterly_report_is_received_and_consolidated_as_late(
    second_system: System,
) -> None:
    plan = flow.plan_of(second_system)
    receipt = await flow.submit(second_system, flow.report_body(plan, Q2_2027, "phuong-an-phu"))
    assert receipt["on_time"] is False  # the clock is two days past the due date

    mails = await flow.mails_about(second_system, receipt)
    full = await mailpit.message(second_system.servers.mailpit_api, mails[0]["ID"])
    subject = str(email.header.make_header(email.header.decode_header(full["Subject"])))
    assert subject.startswith("Đã tiếp nhận Báo cáo quý II năm 2027")
    assert "Quá hạn" in full["Text"]

    await flow.wait_until_projected(second_system, Q2_2027, 1)
    report = await flow.consolidate(second_system, Q2_2027)
    expected = len(plan.reporting_units())
    assert flow.counts(report) == (expected, 1, 0, 1, expected - 1)
    assert {u["unit_id"]: u["status"] for u in report["units"]}["phuong-an-phu"] == "late"


async def test_a_unit_that_has_not_reported_gets_an_overdue_notice(
    second_system: System,
) -> None:
    plan = flow.plan_of(second_system)
    unit = plan.unit("phuong-hoa-lac")
    assert unit is not None
    addresses = [c.email for c in unit.contacts if c.email and "email" in c.receives]

    async def overdue_notices() -> list[dict[str, object]] | None:
        found = []
        for address in addresses:
            found += await mailpit.search(
                second_system.servers.mailpit_api,
                f'from:{second_system.sender} to:{address} subject:"Quá hạn"',
            )
        return found or None

    # deadlines scans every second in this system; notify mails the unit's contacts.
    notices = await eventually(overdue_notices, timeout=60, what="an overdue notice")
    assert notices
