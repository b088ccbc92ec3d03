"""The whole system as separate processes, one per service, on the real servers.

Each system gets its own namespace (topics, consumer groups, databases), its own ports and its
own plan files and clock start, so systems never see each other's events or data.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import Servers
from tests.support.launch import Wiring, await_ready, free_port, launch, log_tail, stop
from tests.support.namespaces import forget_now

ROOT = Path(__file__).resolve().parents[2]
SEED_PLAN = ROOT / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
SECOND_PLAN = ROOT / "tests" / "fixtures" / "plans" / "kh-chuyen-doi-so-phuong-an.yaml"
PROVINCE_PLAN = ROOT / "tests" / "fixtures" / "plans" / "kh-tinh-hai-cap-quy.yaml"
SERVICES = ("submissions", "deadlines", "notify", "consolidate")


@dataclass
class System:
    servers: Servers
    namespace: str
    plans: list[Path]
    clock_start: str
    log_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: {s: free_port() for s in SERVICES})
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    @property
    def wiring(self) -> Wiring:
        return Wiring(
            kafka_bootstrap=self.servers.kafka_bootstrap,
            mongo_uri=self.servers.mongo_uri,
            smtp_host=self.servers.smtp_host,
            smtp_port=self.servers.smtp_port,
            namespace=self.namespace,
            plans=self.plans,
            clock_start=self.clock_start,
        )

    @property
    def sender(self) -> str:
        return self.wiring.sender

    def topic(self, name: str) -> str:
        return f"{self.namespace}.{name}"

    def start(self) -> None:
        for service in SERVICES:
            self.launch(service)
        for service in SERVICES:
            self.wait_ready(service)

    def launch(self, service: str, **env: str) -> None:
        """Start one service's process (again), with ``env`` over the system's settings."""
        self.processes[service] = launch(
            service,
            self.wiring.env(
                self.ports,
                BAOCAO_SCAN_INTERVAL_SECONDS="1",
                BAOCAO_SEND_RETRY_SECONDS="0.5",
                **env,
            ),
            self.log_dir / f"{service}.log",
        )

    def halt(self, service: str) -> None:
        """Stop one service's process (SIGTERM: it finishes what it holds and leaves)."""
        stop([self.processes[service]])

    def wait_ready(self, service: str, timeout: float = 60.0) -> None:
        if not await_ready(self.url(service), self.processes[service], timeout):
            tail = log_tail(self.log_dir / f"{service}.log")
            pytest.fail(f"{service} did not become ready; its log ends:\n{tail}", pytrace=False)

    def stop(self) -> None:
        stop(self.processes.values())
        forget_now(
            self.namespace,
            kafka_bootstrap=self.servers.kafka_bootstrap,
            mongo_uri=self.servers.mongo_uri,
        )


def start_system(servers: Servers, tmp: Path, plans: list[Path], clock_start: str) -> System:
    namespace = "e2e" + uuid.uuid4().hex[:10]
    system = System(servers, namespace, plans, clock_start, tmp / namespace)
    system.start()
    return system


@pytest.fixture(scope="module")
def seed_system(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The seed plan, on 1 June 2027: the 6-month period is open and not yet due."""
    system = start_system(
        servers, tmp_path_factory.mktemp("e2e"), [SEED_PLAN], "2027-06-01T09:00:00+07:00"
    )
    yield system
    system.stop()


@pytest.fixture(scope="module")
def second_system(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The quarterly plan of another hierarchy, two days after the Q2 2027 due date."""
    system = start_system(
        servers, tmp_path_factory.mktemp("e2e"), [SECOND_PLAN], "2027-07-12T09:00:00+07:00"
    )
    yield system
    system.stop()


@pytest.fixture(scope="module")
def province_system(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The province's two-tier quarterly plan, three days before the Q2 2027 due date (15/6):
    the quarter is open and its five-day reminder is already due."""
    system = start_system(
        servers, tmp_path_factory.mktemp("e2e"), [PROVINCE_PLAN], "2027-06-12T09:00:00+07:00"
    )
    yield system
    system.stop()
