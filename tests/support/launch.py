"""Running the four services as real processes, the way `make up` does, for the end-to-end
tests, the fault suite and the benchmarks: one place for the environment they read, how a
process is started and stopped, and how readiness is awaited."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Wiring:
    """What every service of one system is told: where the servers are, its namespace, the
    plans and the clock."""

    kafka_bootstrap: str
    mongo_uri: str
    smtp_host: str
    smtp_port: int
    namespace: str
    plans: Iterable[Path]
    clock_start: str

    @property
    def sender(self) -> str:
        """Each system mails from its own address: its mail is told apart from other runs'."""
        return f"{self.namespace}@baocao.example"

    def env(self, ports: dict[str, int], **extra: str) -> dict[str, str]:
        """The process environment: this machine's, the system's settings, then ``extra``."""
        return {
            **os.environ,
            "BAOCAO_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "BAOCAO_MONGO_URI": self.mongo_uri,
            "BAOCAO_SMTP_HOST": self.smtp_host,
            "BAOCAO_SMTP_PORT": str(self.smtp_port),
            "BAOCAO_NAMESPACE": self.namespace,
            "BAOCAO_MAIL_FROM": f"Hệ thống báo cáo <{self.sender}>",
            "BAOCAO_PLANS": ",".join(str(p) for p in self.plans),
            "BAOCAO_CLOCK_START": self.clock_start,
            **{f"BAOCAO_{s.upper()}_PORT": str(p) for s, p in ports.items()},
            **extra,
        }


def launch(service: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m services.<service>`` in its own process group, its output appended
    to ``log`` after a line saying when."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n--- started at {time.strftime('%H:%M:%S')} ---\n".encode())
        out.flush()
        return subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def await_ready(url: str, process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether ``url``/readyz answered 200 before ``timeout`` seconds, while the process ran."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def log_tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def stop(processes: Iterable[subprocess.Popen[bytes]], *, patience: float = 15.0) -> None:
    """SIGTERM every process group (they finish what they hold), SIGKILL what outlives
    ``patience``."""
    running = list(processes)
    for process in running:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in running:
        try:
            process.wait(timeout=patience)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
