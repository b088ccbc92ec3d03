"""Taking a long iterable a bounded piece at a time."""

from __future__ import annotations

import contextlib
import gc
import itertools
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def chunked(items: Iterable[T], size: int, *, collect: bool = True) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), each taken from ``items`` only
    when it is asked for: a lazy producer makes the next chunk after the caller is done with
    the one before (``itertools.batched`` from Python 3.12 on).

    ``collect=False`` pauses the cyclic garbage collector while a chunk is made, for a
    producer that allocates many objects that all live until the chunk is let go and make no
    cycles: each collection would walk them for nothing (15 % of the deadlines rung-day tick
    at 100,000 units). It is back on between chunks (and as it was found after the last), so
    any cyclic garbage a chunk leaves is collected as usual, later.
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    remaining = iter(items)
    while True:
        with contextlib.nullcontext() if collect else _collector_paused():
            chunk = list(itertools.islice(remaining, size))
        if not chunk:
            return
        yield chunk


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()
