"""Many events that differ in a few strings, validated once and rendered by substitution.

On a rung day the deadlines scan makes one event per unit of a province (100,000), all alike
but for the unit and the event id. Validating a pydantic model per unit and dumping it costs
tens of microseconds; the model validated once with placeholders, dumped, and cut at them
gives the same JSON for each unit for the price of joining a few strings (the outbox takes
it as an ``outbox.SerializedEvent``). Tests hold each template to what the model itself writes
(tests/unit/test_templates.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

_PLAIN = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
"""Values written into a template as they are: a plan's slugs (unit ids) and UUID text. They
need no JSON escaping, and the string fields holes stand for (``Id``: 1-128 characters)
accept them; any other value goes through the model (``JsonTemplate.render``). A hole for a
UUID field is given a UUID's canonical text (``NameIds.text``), which it is not checked for."""


class JsonTemplate:
    """``model.model_validate(data).model_dump_json()`` with holes: the string fields at
    ``holes`` (paths into ``data``) are filled at each ``render``, in that order.

    Each hole is validated once with a placeholder (a random UUID's text, which a string or a
    UUID field accepts), and the JSON is cut where each placeholder stands. ``render`` joins
    the pieces with the values; a value that is not plain (``_PLAIN``) is validated through
    the model instead, so that escaping and constraints stay pydantic's.
    """

    def __init__(
        self, model: type[BaseModel], data: Mapping[str, Any], holes: Sequence[tuple[str, ...]]
    ) -> None:
        self._model, self._data, self._holes = model, data, tuple(holes)
        placeholders = [str(uuid.uuid4()) for _ in self._holes]
        text = model.model_validate(_filled(data, self._holes, placeholders)).model_dump_json()
        where = []
        for path, placeholder in zip(self._holes, placeholders, strict=True):
            quoted = f'"{placeholder}"'
            if text.count(quoted) != 1:
                raise ValueError(f"{model.__name__}: the hole {'.'.join(path)} is not a string")
            where.append((text.index(quoted), len(quoted)))
        order = sorted(range(len(where)), key=lambda i: where[i][0])
        if order != list(range(len(where))):
            raise ValueError(f"{model.__name__}: holes must be given in the order they are written")
        # The text around the placeholders, quotes included: values go between the pieces.
        self._pieces: list[str] = []
        start = 0
        for at, length in where:
            self._pieces.append(text[start : at + 1])
            start = at + length - 1
        self._pieces.append(text[start:])

    def render(self, *values: str) -> str:
        """The JSON with ``values`` in the holes, whatever they are."""
        if all(map(_PLAIN.fullmatch, values)):
            return self.fill(*values)
        data = _filled(self._data, self._holes, values)
        return self._model.model_validate(data).model_dump_json()

    def fill(self, *values: str) -> str:
        """The JSON with ``values`` written in the holes unchecked: for values the caller
        knows are plain (``is_plain``), such as a plan's unit ids, which its ``Slug`` type
        keeps to that alphabet and length. One check per unit of a scan, not per event."""
        pieces = self._pieces
        if len(pieces) == 3:  # the deadlines' rung (event id, unit), spelt out: it is hot
            first, second = values
            return pieces[0] + first + pieces[1] + second + pieces[2]
        if len(pieces) == 2:  # a summary's pending unit
            (only,) = values
            return pieces[0] + only + pieces[1]
        out = [pieces[0]]
        for value, piece in zip(values, pieces[1:], strict=True):
            out += (value, piece)
        return "".join(out)

    def fill_each(self, values: Iterable[str]) -> list[str]:
        """``fill`` for each value, of a template with one hole (a summary's pending units)."""
        head, tail = self._pieces  # one hole: two pieces
        return [head + value + tail for value in values]


def is_plain(value: str) -> bool:
    """Whether ``JsonTemplate.fill`` may write ``value`` as it is."""
    return _PLAIN.fullmatch(value) is not None


def _filled(
    data: Mapping[str, Any], holes: Sequence[tuple[str, ...]], values: Sequence[str]
) -> dict[str, Any]:
    filled: dict[str, Any] = dict(data)
    for path, value in zip(holes, values, strict=True):
        inner = filled
        for name in path[:-1]:
            inner[name] = dict(inner[name])
            inner = inner[name]
        inner[path[-1]] = value
    return filled
