"""Fault suite: the four services as processes, faults injected, every effect counted.

Each scenario records how many records went in, how many were lost and how many effects
happened twice, from what it observed (mail in a private Mailpit, the consolidate preview and
reports, dead letters, Kafka offsets, the services' own stores). The table is printed at the
end of the run, whatever the verdicts; each test also asserts lost == 0 and duplicated == 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Servers
from tests.faults.harness import Endpoints, FaultSystem, Mailpit


@dataclass(frozen=True)
class Row:
    scenario: str
    records_in: int
    lost: int
    duplicated: int
    note: str = ""

    @property
    def verdict(self) -> str:
        return "ok" if self.lost == 0 and self.duplicated == 0 else "FAILED"


ROWS = pytest.StashKey[list[Row]]()

Tally = Callable[..., Row]


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Tally:
    """``tally(scenario, records_in, lost, duplicated, note="")``: one row of the table."""

    def record(scenario: str, records_in: int, lost: int, duplicated: int, note: str = "") -> Row:
        row = Row(scenario, records_in, lost, duplicated, note)
        request.config.stash.setdefault(ROWS, []).append(row)
        return row

    return record


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = terminalreporter.config.stash.get(ROWS, [])
    if not rows:
        return
    terminalreporter.section("fault suite: records in, lost, duplicated effects")
    width = max(len(r.scenario) for r in rows)
    header = f"{'scenario':<{width}}  {'in':>5}  {'lost':>5}  {'duplicated':>10}  verdict"
    terminalreporter.write_line(header)
    terminalreporter.write_line("-" * len(header))
    for r in rows:
        line = (
            f"{r.scenario:<{width}}  {r.records_in:>5}  {r.lost:>5}  {r.duplicated:>10}  "
            f"{r.verdict}"
        )
        terminalreporter.write_line(line + (f"  ({r.note})" if r.note else ""))


@pytest.fixture(scope="session")
def private_mailpit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailpit]:
    """Mail of the fault suite only, never pruned: counted exactly, and the shared Mailpit
    (500 messages, read by other suites) is not flooded."""
    mailpit = Mailpit(tmp_path_factory.mktemp("mailpit"))
    mailpit.start()
    yield mailpit
    mailpit.stop()


def make_system(servers: Servers, mailpit: Mailpit, log_dir: Path, **fields: object) -> FaultSystem:
    endpoints = Endpoints(
        servers.kafka_bootstrap, servers.mongo_uri, mailpit.smtp_port, mailpit.api
    )
    return FaultSystem(endpoints, log_dir, **fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def system(
    servers: Servers, private_mailpit: Mailpit, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FaultSystem]:
    """The seed plan on 1 June 2027 (six-month period open), all four services, one each."""
    fault_system = make_system(servers, private_mailpit, tmp_path_factory.mktemp("faults"))
    fault_system.start_all()
    yield fault_system
    fault_system.stop()
