"""The closing race: reports accepted before the close, projected only after it.

consolidate is stopped, units file reports in the last seconds of the period, deadlines
publishes PeriodClosed, and only then does consolidate start again: it reads the close and
the reports in whatever order its two consumers get them. The report versions it publishes
must end with one that counts every report accepted before ``closes_at``.
"""

from __future__ import annotations

import datetime as dt
import json
import signal
from collections import Counter
from collections.abc import Iterator

import pytest

from contracts.topics import PERIOD_CLOSED, REPORT_CONSOLIDATED
from services.common.periods import find_period
from services.common.reference import load_plan
from tests.conftest import Servers
from tests.faults.conftest import Tally, make_system
from tests.faults.harness import (
    SEED_PLAN,
    SIX_MONTHS_2027,
    FaultSystem,
    Mailpit,
    burst,
    consolidation_errors,
    read_topic,
    settled,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.faults

LEAD = dt.timedelta(seconds=35)
"""How long before the close the system starts: time to start, stop consolidate and file."""
REPORTS = 40


def closes_at() -> dt.datetime:
    period = find_period(load_plan(SEED_PLAN), SIX_MONTHS_2027)
    assert period is not None
    return period.closes_at


@pytest.fixture(scope="module")
def system(
    servers: Servers, private_mailpit: Mailpit, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultSystem]:
    fault_system = make_system(
        servers,
        private_mailpit,
        tmp_path_factory.mktemp("closing"),
        clock_start=(closes_at() - LEAD).isoformat(),
    )
    fault_system.start_all()
    yield fault_system
    fault_system.stop()


async def test_the_last_report_version_counts_every_report_accepted_before_the_close(
    system: FaultSystem, tally: Tally
) -> None:
    system.signal("consolidate", signal.SIGTERM)
    filings = await burst(system, REPORTS)
    ok = [f for f in filings if f.status == 201]
    assert len(ok) == REPORTS, [f.error for f in filings if f.status != 201][:3]
    last_accepted = max(
        dt.datetime.fromisoformat(f.receipt["received_at"]) for f in ok if f.receipt
    )
    assert last_accepted < closes_at(), "every report was accepted before the close"

    bootstrap = system.endpoints.kafka_bootstrap

    async def closed() -> bool:
        records = await read_topic(bootstrap, system.topic(PERIOD_CLOSED))
        return any(json.loads(r.value)["payload"]["period_id"] == SIX_MONTHS_2027 for r in records)

    await eventually(closed, timeout=60, what="deadlines to publish PeriodClosed")
    system.start("consolidate")
    await settled(system, "consolidate")

    records = await read_topic(bootstrap, system.topic(REPORT_CONSOLIDATED))
    versions = sorted(
        (json.loads(r.value)["payload"] for r in records),
        key=lambda p: p["version"],
    )
    versions = [v for v in versions if v["period_id"] == SIX_MONTHS_2027]
    assert versions, "consolidate published no report for the closed period"
    final = versions[-1]
    lost, dup, details = consolidation_errors(final, Counter(f.unit_id for f in ok))
    tally(
        "closing race: last report version after the close",
        REPORTS,
        lost,
        dup + len(versions) - len({v["version"] for v in versions}),
        f"{len(versions)} version(s), last '{final['trigger']}' with {final['received']} units",
    )
    assert final["trigger"] == "period_closed"
    assert (lost, dup) == (0, 0), details
    assert len({v["version"] for v in versions}) == len(versions), "one event per version"
