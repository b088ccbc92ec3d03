"""Memory and CPU of the service processes, read from /proc (no psutil needed)."""

from __future__ import annotations

import asyncio
import time

from bench.system import System, cpu_seconds, rss_bytes

MB = 1024 * 1024


async def snapshot(system: System, seconds: float) -> dict[str, dict[str, float]]:
    """Per service: RSS at the end (MB) and CPU used over ``seconds`` (% of one core)."""
    pids = {name: process.pid for name, process in system.processes.items()}
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    began = time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - began
    return {
        name: {
            "rss_mb": rss_bytes(pid) / MB,
            "cpu_percent": (cpu_seconds(pid) - before[name]) / elapsed * 100,
        }
        for name, pid in pids.items()
    }
