"""Taking a long iterable a bounded piece at a time."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """``items`` in lists of ``size`` (the last one shorter), each taken from ``items`` only
    when it is asked for: a lazy producer makes the next chunk after the caller is done with
    the one before (``itertools.batched`` from Python 3.12 on)."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    remaining = iter(items)
    while chunk := list(itertools.islice(remaining, size)):
        yield chunk
