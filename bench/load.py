"""Traffic shapes: a fixed number of clients as fast as they can, or a fixed arrival rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.harness import percentile
from bench.http import Connection, HttpError

Send = Callable[[Connection, int], Awaitable[bool]]
"""Sends request number ``i`` on the connection; True when the answer was the expected one."""


@dataclass
class LoadResult:
    elapsed: float
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0

    @property
    def completed(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.completed / self.elapsed if self.elapsed else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies_ms, q)


async def closed_loop(
    port: int, send: Send, *, clients: int, seconds: float, max_requests: int
) -> LoadResult:
    """``clients`` connections, each sending its next request as soon as the last is answered."""
    result = LoadResult(elapsed=0.0)
    counter = iter(range(max_requests))
    start = time.perf_counter()
    stop_at = start + seconds

    async def client() -> None:
        connection = Connection(port)
        try:
            for i in counter:
                if time.perf_counter() >= stop_at:
                    return
                began = time.perf_counter()
                ok = await _send(send, connection, i)
                if ok:
                    result.latencies_ms.append((time.perf_counter() - began) * 1000)
                else:
                    result.errors += 1
        finally:
            await connection.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    result.elapsed = time.perf_counter() - start
    return result


async def open_loop(
    port: int,
    send: Send,
    *,
    rate: float,
    seconds: float,
    max_in_flight: int = 256,
    give_up_after: float = 10.0,
) -> LoadResult:
    """Requests at a steady ``rate``, each timed from when it was due (no coordinated omission).

    Connections are reused when free and opened when all are busy, up to ``max_in_flight``.
    A request not answered ``give_up_after`` seconds after it was due counts as an error: a system
    that cannot keep up ends the run late by that much at most, not by its whole backlog.
    """
    result = LoadResult(elapsed=0.0)
    idle: list[Connection] = []
    slots = asyncio.Semaphore(max_in_flight)
    total = int(rate * seconds)
    start = time.perf_counter()

    async def one(i: int, due: float) -> None:
        async with slots:
            connection = idle.pop() if idle else Connection(port)
            left = due + give_up_after - time.perf_counter()
            try:
                ok = left > 0 and await asyncio.wait_for(_send(send, connection, i), left)
            except TimeoutError:
                await connection.close()  # half a request on it: never reuse
                ok = False
            if ok:
                result.latencies_ms.append((time.perf_counter() - due) * 1000)
            else:
                result.errors += 1
            idle.append(connection)

    tasks = []
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - start
    for connection in idle:
        await connection.close()
    return result


async def _send(send: Send, connection: Connection, i: int) -> bool:
    try:
        return await send(connection, i)
    except (HttpError, OSError):
        return False
