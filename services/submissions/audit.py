"""The audit trail: who did what, when, from where. Append-only, readable by admins.

One collection per month (``audit.2026-11``): the trail only grows, and on a store that reads by
scanning (bench/README.md) a month's records are what an admin's page reads. Nothing updates or
deletes a record; a write that fails is retried by the caller's request failing, never skipped
(a filed report is recorded again on its idempotent retry, once per report: ``once``).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from fastapi import Request
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal
from services.common.clock import Clock
from services.common.mongo import Document

log = logging.getLogger(__name__)

PREFIX = "audit."


class Action(StrEnum):
    SIGN_IN = "sign_in"
    SIGN_IN_FAILED = "sign_in_failed"
    SIGN_OUT = "sign_out"
    SUBMISSION = "submission"
    DRAFT_SAVED = "draft_saved"
    ATTACHMENT_ADDED = "attachment_added"
    ATTACHMENT_REMOVED = "attachment_removed"
    REVIEW = "review"
    EXCEPTION = "exception"
    EXTENSION_REQUESTED = "extension_requested"
    EXTENSION_DECIDED = "extension_decided"
    ACCOUNT_CHANGED = "account_changed"
    TOKEN_CREATED = "token_created"  # noqa: S105 (an action name)
    TOKEN_REVOKED = "token_revoked"  # noqa: S105
    DENIED = "denied"
    """A request for another unit's data, or a role's forbidden action."""


def client_address(request: Request | None) -> str | None:
    if request is None or request.client is None:
        return None
    return request.client.host


class AuditTrail:
    def __init__(self, db: AsyncDatabase[Document], clock: Clock) -> None:
        self._db = db
        self._clock = clock

    @staticmethod
    def collection_name(at: dt.datetime) -> str:
        return f"{PREFIX}{at:%Y-%m}"

    async def record(
        self,
        action: Action,
        *,
        actor: Principal | None = None,
        actor_name: str | None = None,
        request: Request | None = None,
        unit_id: str | None = None,
        period_id: str | None = None,
        outcome: str = "ok",
        once: str | None = None,
        **details: Any,
    ) -> Document:
        """Appends a record. ``once`` names what it is about when the caller may repeat the
        record (a retried request whose first answer failed): the month's collection keeps
        the first, and repeating it is harmless."""
        at = self._clock.now()
        entry: Document = {
            "_id": once or str(uuid.uuid4()),
            "at": at,
            "action": action.value,
            "actor": actor.subject if actor else actor_name,
            "role": actor.role.value if actor else None,
            "actor_unit": actor.unit_id if actor else None,
            "address": client_address(request),
            "method": request.method if request else None,
            "path": request.url.path if request else None,
            "unit_id": unit_id,
            "period_id": period_id,
            "outcome": outcome,
            "details": details,
        }
        try:
            await self._db[self.collection_name(at)].insert_one(entry)
        except DuplicateKeyError:
            if once is None:
                raise
        return entry

    async def recent(self, limit: int = 200, months: int = 2) -> list[Document]:
        """The newest records of the last ``months`` months, newest first."""
        now = self._clock.now()
        since = _month_start(now)
        for _ in range(months - 1):
            since = _month_start(since - dt.timedelta(days=1))
        return await self.search(AuditQuery(since=since.date(), limit=limit))

    async def search(self, query: AuditQuery) -> list[Document]:
        """The newest records matching ``query``, newest first, month by month (newest month
        first) until ``query.limit`` are found: only the months in its range are read."""
        now = self._clock.now()
        start, end = query.span(now)
        names = set(await self._db.list_collection_names())
        found: list[Document] = []
        month = _month_start(min(end, now))
        while month >= _month_start(start) and len(found) < query.limit:
            name = self.collection_name(month)
            if name in names:
                cursor = (
                    self._db[name]
                    .find(query.filter(start, end), {"_id": 0})
                    .sort("at", -1)
                    .limit(query.limit - len(found))
                )
                found += await cursor.to_list(None)
            month = _month_start(month - dt.timedelta(days=1))
        return found


@dataclass(frozen=True)
class AuditQuery:
    """What an admin looks for; days are UTC days, ``until`` included. Without ``since``, the
    trail of this month and the last is read (older months only when asked for)."""

    actor: str | None = None
    unit_id: str | None = None
    """Records about the unit, or by its people."""
    action: str | None = None
    since: dt.date | None = None
    until: dt.date | None = None
    limit: int = 200

    def span(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        end = (
            dt.datetime.combine(self.until + dt.timedelta(days=1), dt.time(), dt.UTC)
            if self.until
            else now + dt.timedelta(seconds=1)
        )
        if self.since:
            start = dt.datetime.combine(self.since, dt.time(), dt.UTC)
        else:
            start = _month_start(_month_start(min(end, now)) - dt.timedelta(days=1))
        return start, end

    def filter(self, start: dt.datetime, end: dt.datetime) -> Document:
        found: Document = {"at": {"$gte": start, "$lt": end}}
        if self.actor:
            found["actor"] = self.actor
        if self.action:
            found["action"] = self.action
        if self.unit_id:
            found["$or"] = [{"unit_id": self.unit_id}, {"actor_unit": self.unit_id}]
        return found


def _month_start(at: dt.datetime) -> dt.datetime:
    return dt.datetime(at.year, at.month, 1, tzinfo=dt.UTC)
