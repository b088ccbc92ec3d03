"""One benchmark run: its namespace, its bounds, the systems it started, and its clean-up."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from bench.harness import log
from bench.system import SERVICES, Servers, System
from services.common.mongo import connect


@dataclass(frozen=True)
class Bounds:
    """How much traffic each benchmark sends; ``quick`` is for trying the bench itself out."""

    p0_levels: tuple[int, ...] = (0, 1_000, 10_000, 100_000)
    p0_posts_per_repetition: int = 20
    p0_seconds_per_level: float = 90.0
    p1_clients: tuple[int, ...] = (1, 4, 16, 32)
    p1_seconds: float = 4.0
    p1_max_requests: int = 5_000
    p2_events: int = 1_000
    p3_events: int = 1_000
    p6_rate: float = 100.0
    p6_seconds: float = 60.0
    p8_burst_requests: int = 600
    p9_mails: int = 10_000
    p10_sizes: tuple[int, ...] = (1_000, 10_000, 100_000)
    p11_units: int = 100_000
    p11_store_units: int = 3_000
    repetitions: int = 5
    """Five, not three: the range of three repetitions missed the next run's median for half
    the figures on this machine (28 November), which drifts some ±30 % from run to run."""

    @classmethod
    def quick(cls) -> Bounds:
        return cls(
            p0_levels=(0, 1_000),
            p0_posts_per_repetition=8,
            p1_clients=(1, 8),
            p1_seconds=2.0,
            p2_events=300,
            p3_events=300,
            p6_seconds=15.0,
            p8_burst_requests=200,
            p9_mails=300,
            p10_sizes=(300, 3_000),
            p11_units=10_000,
            p11_store_units=1_000,
        )


@dataclass
class Run:
    servers: Servers
    bounds: Bounds
    log_root: Path
    namespace: str = field(default_factory=lambda: "bench" + uuid.uuid4().hex[:8])
    systems: list[System] = field(default_factory=list)
    samples: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    """P8: resource samples by moment ("idle", "after P1 load #1", ...) and service."""
    _shared: System | None = None

    def sub_namespace(self, suffix: str) -> str:
        """A benchmark's own data and topics, still under the run's namespace."""
        return f"{self.namespace}-{suffix}"

    def start_system(self, suffix: str, services: tuple[str, ...] = SERVICES) -> System:
        namespace = self.sub_namespace(suffix) if suffix else self.namespace
        system = System(self.servers, namespace, self.log_root / namespace, services)
        self.systems.append(system)
        system.start()
        return system

    def shared_system(self) -> System:
        """All four services in the run's namespace: P6 and P8 observe the same processes."""
        if self._shared is None:
            self._shared = self.start_system("")
        return self._shared

    def stop_system(self, system: System) -> None:
        system.stop()
        if system is self._shared:
            self._shared = None

    async def clean_up(self) -> None:
        """Stop what this run started and drop its databases and topics."""
        for system in self.systems:
            system.stop()
        client = connect(self.servers.mongo_uri)
        try:
            prefix = self.namespace
            for name in await client.list_database_names():
                if name.startswith(prefix):
                    await client.drop_database(name)
        finally:
            await client.close()
        try:
            await self._delete_topics()
        except Exception as error:  # Kafka restarted by someone else: leftovers are harmless
            log(f"topics of {self.namespace} left behind: {type(error).__name__}: {error}")
        log(f"cleaned up namespace {self.namespace}")

    async def _delete_topics(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.servers.kafka)
        await admin.start()
        try:
            ours = [t for t in await admin.list_topics() if t.startswith(self.namespace)]
            if ours:
                await admin.delete_topics(ours)
        finally:
            await admin.close()
