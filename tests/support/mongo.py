"""MongoDB-wire helpers for integration tests: a throw-away database, the commands a piece of
code sends (pymongo command monitoring), and the server's ``explain`` of a filter.

Structural guards instead of timings: which collections a hot path reads, and whether
FerretDB pushes a filter down to its storage (``filterPushdown`` in ``explain``), are facts
that do not depend on the machine's speed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from services.common.mongo import Document

# The command name is the first key; its value names the collection for these commands.
_NAMES_COLLECTION = frozenset(
    {"find", "insert", "update", "delete", "findAndModify", "aggregate", "count", "distinct"}
)
_NAMES_COLLECTION |= {"createIndexes", "listIndexes", "dropIndexes", "drop", "create"}


@dataclass(frozen=True)
class Command:
    """One command a client sent: its name, the collection it touches and its filters."""

    name: str
    database: str
    collection: str | None
    filters: tuple[Document, ...]


def _filters(name: str, body: Mapping[str, Any]) -> tuple[Document, ...]:
    if name in ("find", "count", "distinct"):
        return (dict(body.get("filter") or body.get("query") or {}),)
    if name == "findAndModify":
        return (dict(body.get("query") or {}),)
    if name in ("update", "delete"):
        key = "updates" if name == "update" else "deletes"
        return tuple(dict(op.get("q") or {}) for op in body.get(key) or ())
    return ()


class CommandLog(monitoring.CommandListener):
    """Records the commands its client sends while ``recording()`` is active."""

    def __init__(self) -> None:
        self.commands: list[Command] = []
        self._on = False

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[Command]]:
        """Record what the block sends; yields the list that fills up."""
        self.commands = []
        self._on = True
        try:
            yield self.commands
        finally:
            self._on = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self._on:
            return
        name = event.command_name
        body = event.command
        if name == "getMore":
            collection: str | None = body.get("collection")
        elif name in _NAMES_COLLECTION:
            collection = body.get(name)
        else:
            collection = None
        self.commands.append(Command(name, event.database_name, collection, _filters(name, body)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        """Nothing to do: what was sent is what the guards are about."""

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        """A failed command was sent all the same (a duplicate key, say): already recorded."""

    def touching(self, collection: str) -> list[Command]:
        return [c for c in self.commands if c.collection == collection]


def client(uri: str, *listeners: monitoring.CommandListener) -> AsyncMongoClient[Document]:
    """A client configured like ``services.common.mongo.connect``, plus ``listeners``."""
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        uuidRepresentation="standard",
        event_listeners=list(listeners),
    )


@contextlib.asynccontextmanager
async def throwaway_database(
    uri: str, name: str, *listeners: monitoring.CommandListener
) -> AsyncIterator[AsyncDatabase[Document]]:
    """A database dropped at the end (its name is unique per test anyway)."""
    mongo = client(uri, *listeners)
    try:
        yield mongo[name]
    finally:
        await mongo.drop_database(name)
        await mongo.close()


async def explain_find(db: AsyncDatabase[Document], collection: str, filter: Document) -> Document:
    """What the server says about ``find(filter)`` on ``collection``."""
    return dict(await db.command("explain", {"find": collection, "filter": filter}))


def is_ferretdb(explained: Mapping[str, Any]) -> bool:
    return "ferretdbVersion" in (explained.get("serverInfo") or {})


async def outbox_view(db: AsyncDatabase[Document]) -> list[Document]:
    """Every outbox entry once, as the relay sees it: the ready copy of a committed intent
    (``outbox_ready``) in place of the intent, then intents and published ones (``outbox``)."""
    ready = {d["_id"]: d for d in await db["outbox_ready"].find({}).to_list()}
    kept = await db["outbox"].find({}).to_list()
    view = [ready.pop(d["_id"], d) for d in kept]
    return view + list(ready.values())


async def outbox_size(db: AsyncDatabase[Document]) -> int:
    return len(await outbox_view(db))
