"""When each submission's event reached Kafka, as a plain consumer in this process sees it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from aiokafka import AIOKafkaConsumer


class EventsSeen:
    """Reads a topic from its start (the run's topics are new) and notes arrival times."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._topic = topic
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=5,  # the delay we measure must not be our own poll interval
        )
        self.arrived: dict[str, float] = {}
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        self._task = asyncio.create_task(self._read())
        # Without a group every partition is ours, once the topic's metadata has arrived.
        for _ in range(100):
            if self._consumer.assignment():
                return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"no partitions of {self._topic} assigned after 10 s")

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=50)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    payload = json.loads(record.value)["payload"]
                    self.arrived.setdefault(payload["submission_id"], now)
            if batches:
                async with self._changed:
                    self._changed.notify_all()

    async def wait_for(self, submission_id: str, within: float) -> float | None:
        """perf_counter() when the event arrived, or None after ``within`` seconds."""
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: submission_id in self.arrived), within
                )
        return self.arrived.get(submission_id)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._consumer.stop()
