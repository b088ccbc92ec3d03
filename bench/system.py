"""The servers and the services under test, as separate processes on 127.0.0.1.

Servers come from the project's local stack: those already running are reused, those this run
starts are stopped at the end (as ``tests/conftest.py`` does). Each service runs as
``python -m services.<name>`` on a free port, in the benchmark's own namespace.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.auth import key_env
from bench.harness import log
from deploy.local import stack
from tests.support.launch import Wiring, await_ready, free_port, launch, log_tail, stop

ROOT = Path(__file__).resolve().parents[1]
SEED_PLAN = ROOT / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
SERVICES = ("submissions", "deadlines", "notify", "consolidate")
# The six-month 2027 period is open then and not yet due: every unit can file on time.
CLOCK_START = "2027-06-01T09:00:00+07:00"
OPEN_PERIOD = "kh-nq35-ngoc-hoi.2027.6-thang"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class ServiceFailed(Exception):
    """A service did not become ready; the message ends with its log."""


@dataclass(frozen=True)
class Servers:
    layout: stack.Layout

    @property
    def kafka(self) -> str:
        return f"127.0.0.1:{self.layout.kafka_port}"

    @property
    def mongo_uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.layout.mongo_port}/"

    @property
    def mailpit_api(self) -> str:
        return f"http://127.0.0.1:{self.layout.mailpit_port}"


@contextlib.contextmanager
def local_servers() -> Iterator[Servers]:
    layout = stack.Layout()
    processes = stack.servers(layout)
    stack.provision(layout)
    started = stack.start_all(processes.values())
    try:
        yield Servers(layout)
    finally:
        stack.stop_all([processes[name] for name in started])


def database_name(namespace: str, service: str) -> str:
    """What ``ServiceSettings.database_name`` makes of a namespace."""
    return f"{namespace.replace('-', '_')}_baocao_{service}"


@dataclass
class System:
    servers: Servers
    namespace: str
    log_dir: Path
    services: tuple[str, ...] = SERVICES
    plans: tuple[Path, ...] = (SEED_PLAN,)
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def wiring(self) -> Wiring:
        return Wiring(
            kafka_bootstrap=self.servers.kafka,
            mongo_uri=self.servers.mongo_uri,
            smtp_host="127.0.0.1",
            smtp_port=self.servers.layout.smtp_port,
            namespace=self.namespace,
            plans=self.plans,
            clock_start=CLOCK_START,
        )

    @property
    def sender(self) -> str:
        """The run's own From address: its mail is found by a search, among other runs' mail."""
        return self.wiring.sender

    def port(self, service: str) -> int:
        return self.ports[service]

    def topic(self, name: str) -> str:
        return f"{self.namespace}.{name}"

    def env(self) -> dict[str, str]:
        return self.wiring.env(self.ports, BAOCAO_LOG_LEVEL="WARNING", **key_env())

    def start(self) -> None:
        self.ports = {s: free_port() for s in self.services}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for service in self.services:
            self.processes[service] = launch(service, self.env(), self.log_dir / f"{service}.log")
        for service in self.services:
            self._wait_ready(service)
        log(f"system {self.namespace}: {', '.join(self.services)} ready (logs {self.log_dir})")

    def _wait_ready(self, service: str, timeout: float = 90.0) -> None:
        if not await_ready(
            f"http://127.0.0.1:{self.ports[service]}", self.processes[service], timeout
        ):
            tail = log_tail(self.log_dir / f"{service}.log")
            raise ServiceFailed(f"{service} did not become ready; its log ends:\n{tail}")

    def stop(self) -> None:
        """Stop the processes this system started (by PID, their own process groups)."""
        stop(self.processes.values(), patience=20)
        self.processes.clear()


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the process so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
