"""A model's canonical JSON (a v2 report's detail file), and its SHA-256 written into the
digest piece by piece (the content hash).

Canonical: ``json.dumps(model.model_dump(mode="json"), sort_keys=True, ensure_ascii=False,
separators=(",", ":"))`` in UTF-8. JSON's objects and arrays compose, so a list of models can be
written ``CHUNK`` items at a time and the keys around it stay sorted: a report of tens of
thousands of units is hashed without its whole dump (a dict tree ten times its JSON) in memory.
"""

from __future__ import annotations

import functools
import hashlib
import json
import types
import typing
from collections.abc import Iterator, Set

from pydantic import BaseModel, TypeAdapter

CHUNK = 1_000


def _dumps(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _model_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], BaseModel)


def _canonical(model: BaseModel, exclude: Set[str] = frozenset()) -> Iterator[str]:
    """``_dumps(model.model_dump(mode="json", exclude=exclude))``, in pieces: JSON's objects and
    arrays compose, so a list of models is written item by item, and sorted keys stay sorted."""
    lists = {
        name
        for name in _list_fields(type(model))
        if name not in exclude and _model_list(getattr(model, name))
    }
    rest = model.model_dump(mode="json", exclude=set(exclude) | lists)
    if not lists:
        yield _dumps(rest)
        return
    yield "{"
    for n, key in enumerate(sorted(rest.keys() | lists)):
        yield ("," if n else "") + _dumps(key) + ":"
        if key in lists:
            yield from _canonical_list(getattr(model, key))
        else:
            yield _dumps(rest[key])
    yield "}"


def _canonical_list(items: list[BaseModel]) -> Iterator[str]:
    yield "["
    kind = type(items[0])
    fields = _list_fields(kind)
    leaves = all(type(i) is kind for i in items) and not any(
        _model_list(getattr(i, f)) for i in items for f in fields
    )
    for start in range(0, len(items), CHUNK):
        chunk = items[start : start + CHUNK]
        if start:
            yield ","
        if leaves:  # one dump per chunk, its brackets dropped
            yield _dumps(_list_adapter(kind).dump_python(chunk, mode="json"))[1:-1]
        else:
            for n, item in enumerate(chunk):
                yield from ([","] if n else [])
                yield from _canonical(item)
    yield "]"


@functools.cache
def _list_fields(kind: type[BaseModel]) -> tuple[str, ...]:
    """Fields that may hold a list (of models): the only ones worth looking into."""
    return tuple(name for name, info in kind.model_fields.items() if _holds_list(info.annotation))


def _holds_list(annotation: object) -> bool:
    origin = typing.get_origin(annotation)
    if origin is list:
        return True
    unions = (typing.Union, types.UnionType)
    return origin in unions and any(_holds_list(a) for a in typing.get_args(annotation))


@functools.cache
def _list_adapter(kind: type[BaseModel]) -> TypeAdapter[list[BaseModel]]:
    return TypeAdapter(list[kind])  # type: ignore[valid-type]


def canonical_json(model: BaseModel) -> bytes:
    """The canonical JSON of ``model``, UTF-8: equal content, equal bytes."""
    return "".join(_canonical(model)).encode()


def canonical_sha256(model: BaseModel, *, exclude: Set[str] = frozenset()) -> str:
    """The hash of the canonical JSON of ``model.model_dump(mode="json", exclude=exclude)``."""
    digest = hashlib.sha256()
    for part in _canonical(model, exclude):
        digest.update(part.encode())
    return digest.hexdigest()
