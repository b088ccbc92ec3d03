"""A plain aiokafka reader for tests: what any other consumer of our topics would see."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from aiokafka import AIOKafkaConsumer


async def read_all(
    bootstrap: str, topic: str, *, until: int, timeout: float = 30.0, settle: float = 1.0
) -> list[dict[str, Any]]:
    """Events on ``topic`` from the beginning: at least ``until`` of them, then whatever else
    arrives within ``settle`` seconds (so a duplicate has its chance to show up)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    events: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + timeout
        quiet_until: float | None = None
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                events.extend(e for r in records if (e := _decoded(r.value)) is not None)
            if len(events) >= until and quiet_until is None:
                quiet_until = time.monotonic() + settle
            if quiet_until is not None and time.monotonic() >= quiet_until:
                break
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    assert len(events) >= until, f"{topic}: expected {until} event(s), read {len(events)}"
    return events


def _decoded(value: bytes) -> dict[str, Any] | None:
    """An event, or None for a record that is not one (tests publish garbage on purpose)."""
    try:
        decoded = json.loads(value)
    except ValueError:
        return None
    return decoded if isinstance(decoded, dict) else None
