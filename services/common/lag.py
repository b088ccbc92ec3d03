"""Consumer lag as a process sees it from its own consumer (kafka-lag-exporter's definition).

For each partition the consumer holds now, lag = the high-water mark (the offset Kafka writes
next) less the group's committed offset: records the group has not finished with. Committed
offsets, not the consumer's position, because that is what survives a restart; and the
high-water mark asked of the broker, not the one cached from the last fetch, because a
consumer stuck inside a handler fetches nothing and its cached mark would stop growing.
A partition held by another replica is measured by that replica, so series never overlap.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.structs import TopicPartition


async def partition_lag(consumer: Any) -> dict[int, int]:
    """Lag per partition number of what ``consumer`` (an AIOKafkaConsumer) is assigned."""
    assigned: list[TopicPartition] = sorted(consumer.assignment())
    if not assigned:
        return {}
    # All at once: the broker answers an offset request only after the empty fetch it may hold
    # on the same connection (up to consumer.FETCH_WAIT_MS), so asked one after the other
    # their waits added up. The first offsets serve partitions the group never committed on (it
    # starts from their beginning, earliest); asking for them all costs no extra wait.
    ends, starts, committed = await asyncio.gather(
        consumer.end_offsets(assigned),
        consumer.beginning_offsets(assigned),
        asyncio.gather(*(consumer.committed(tp) for tp in assigned)),
    )
    return {
        tp.partition: max(ends[tp] - (starts[tp] if offset is None else offset), 0)
        for tp, offset in zip(assigned, committed, strict=True)
    }
