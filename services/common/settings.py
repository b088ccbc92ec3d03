"""Settings every service reads from the environment (prefix ``BAOCAO_``)."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import AwareDatetime, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]
SEED_PLAN = ROOT / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BAOCAO_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    mongo_uri: str = "mongodb://127.0.0.1:27017/"
    namespace: str = Field(
        "",
        pattern=r"^[a-z0-9-]*$",
        description="prefix for topics, consumer groups and databases; lets several "
        "deployments (or test runs) share one Kafka and one MongoDB",
    )
    plans: str = Field(
        str(SEED_PLAN), description="comma-separated plan files (YAML or JSON) this system runs"
    )
    clock_start: AwareDatetime | None = Field(
        None,
        description="testing and rehearsal only: the clock starts at this instant and runs on",
    )
    topic_partitions: int = Field(3, ge=1)
    instance: str = Field(
        default_factory=socket.gethostname,
        min_length=1,
        description="this replica's name among the service's replicas (the outbox's writer); "
        "kept across restarts, distinct between replicas on one host",
    )
    host: str = "127.0.0.1"
    forwarded_allow_ips: str = Field(
        "127.0.0.1",
        description="proxies whose X-Forwarded-For/-Proto are believed (comma-separated "
        "addresses or networks, * for any): the client address then comes from the header, "
        "so the sign-in throttle and the audit trail see people, not the proxy",
    )
    log_level: str = "INFO"
    access_log: bool = False
    """Off by default: one INFO line per request or message drowns the signal."""
    auth_public_key_file: Path = Field(
        description="PEM of the Ed25519 key that signs sign-in tokens (services.common.auth); "
        "no default: a service never starts open to anyone"
    )
    portal_url: str = Field(
        "http://127.0.0.1:8000",
        description="where people sign in (the submissions service), for links back to it",
    )

    @property
    def plan_paths(self) -> list[Path]:
        return [Path(p.strip()) for p in self.plans.split(",") if p.strip()]

    def database_name(self, service: str) -> str:
        base = f"baocao_{service}"
        return f"{self.namespace.replace('-', '_')}_{base}" if self.namespace else base
