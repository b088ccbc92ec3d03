"""Lets schemathesis generate JSON bodies with the pinned hypothesis.

Schemathesis draws objects through hypothesis-jsonschema 0.23.1 (the latest release), which
loops ``while elements.more(): ...`` over ``hypothesis.internal.conjecture.utils.many``.
Hypothesis 6.170 (pinned since issue 8) replaced ``more()`` by a context manager and an
iterator (``with many(...) as elements: for _ in elements:``), so every object schema failed
with ``AttributeError: 'many' object has no attribute 'more'``. :func:`install` gives ``many``
a ``more()`` built on the new protocol; it does nothing where ``more()`` exists (an older
hypothesis, or a fixed hypothesis-jsonschema), so it can be deleted once upstream catches up.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis.internal.conjecture import utils


def _more(self: Any) -> bool:
    """One more element? The old protocol: enter and iterate on first use, exit at the end."""
    steps: Iterator[None] | None = getattr(self, "_compat_steps", None)
    if steps is None:
        self.__enter__()
        steps = self._compat_steps = iter(self)
    try:
        next(steps)
    except StopIteration:
        self.__exit__(None)
        return False
    return True


def install() -> None:
    if not hasattr(utils.many, "more"):
        utils.many.more = _more  # type: ignore[attr-defined]
