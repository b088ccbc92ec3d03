"""The audit trail: who did what, when, from where. Append-only, readable by admins.

One collection per month (``audit.2026-11``): the trail only grows, and on a store that reads by
scanning (bench/README.md) a month's records are what an admin's page reads. Nothing updates or
deletes a record; a write that fails is retried by the caller's request failing, never skipped.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from enum import StrEnum
from typing import Any

from fastapi import Request
from pymongo.asynchronous.database import AsyncDatabase

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
        **details: Any,
    ) -> Document:
        at = self._clock.now()
        entry: Document = {
            "_id": str(uuid.uuid4()),
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
        await self._db[self.collection_name(at)].insert_one(entry)
        return entry

    async def recent(self, limit: int = 200, months: int = 2) -> list[Document]:
        """The newest records of the last ``months`` months, newest first."""
        now = self._clock.now()
        found: list[Document] = []
        year, month = now.year, now.month
        for _ in range(months):
            cursor = self._db[f"{PREFIX}{year:04d}-{month:02d}"].find({}, {"_id": 0})
            found += await cursor.to_list(None)
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        found.sort(key=lambda e: e["at"], reverse=True)
        return found[:limit]
