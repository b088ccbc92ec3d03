"""Admission control: bounded work in progress, and a prompt refusal beyond it."""

from __future__ import annotations

import asyncio

import pytest

from services.common.admission import Admission, Busy

pytestmark = pytest.mark.unit


async def test_work_beyond_the_slots_waits_and_beyond_the_queue_is_refused_at_once() -> None:
    admission = Admission(working=1, waiting=1, max_wait=30.0)
    release = asyncio.Event()
    entered: list[str] = []

    async def request(name: str) -> None:
        async with admission.slot():
            entered.append(name)
            await release.wait()

    first = asyncio.create_task(request("first"))
    second = asyncio.create_task(request("second"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert entered == ["first"]
    assert admission.inside == 2

    with pytest.raises(Busy):
        async with admission.slot():
            pass  # pragma: no cover - refused before entering

    release.set()
    await asyncio.gather(first, second)
    assert entered == ["first", "second"]
    assert admission.inside == 0


async def test_a_request_that_waited_too_long_is_told_busy_and_leaves_the_queue() -> None:
    admission = Admission(working=1, waiting=5, max_wait=0.05)
    hold = asyncio.Event()

    async def holder() -> None:
        async with admission.slot():
            await hold.wait()

    task = asyncio.create_task(holder())
    await asyncio.sleep(0)
    with pytest.raises(Busy):
        async with admission.slot():
            pass  # pragma: no cover - never admitted
    assert admission.inside == 1
    hold.set()
    await task
    async with admission.slot():
        assert admission.inside == 1
