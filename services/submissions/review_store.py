"""Where the office's decisions are kept: reviews, filing exceptions, extension requests.

Small collections, one set per period, each document read by ``_id``; they hold a few
documents per unit, so even a list of the period reads little (see ``store.py`` on why that
matters on a store that scans).

- ``reviews.<period_id>``: one per reviewed version, ``_id`` = ``unit|revision``, insert-only:
  the unique ``_id`` decides between two reviewers of one version. The unit's head
  (``heads.<period_id>``, see ``store.py``) carries a copy as its ``review`` hint, which intake
  reads with the head it reads anyway; it counts only while its revision is the head's.
- ``exceptions.<period_id>``: the unit's filing exception, ``_id`` = unit id (a new grant
  replaces it; the audit trail and the events keep every grant).
- ``extensions.<period_id>``: the unit's latest extension request and the extension in force
  (``granted``), ``_id`` = unit id.
- ``extension_decisions.<period_id>``: one per decided request, ``_id`` = request id,
  insert-only: the unique ``_id`` decides between two deciders. A decision whose copy on the
  request did not get written (a crash between the two writes) is copied when next read.
"""

from __future__ import annotations

import abc
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Document
from services.submissions.store import HEADS

REVIEWS, EXCEPTIONS = "reviews.", "exceptions."
EXTENSIONS, DECISIONS = "extensions.", "extension_decisions."
PENDING = "pending"


class AlreadyRecorded(Exception):
    """A decision with this ``_id`` is already stored."""


def review_id(unit_id: str, revision: int) -> str:
    return f"{unit_id}|{revision}"


def head_hint(review: Document) -> Document:
    """What the head keeps of a review (what intake and lists need)."""
    keep = ("revision", "decision", "comment", "reviewer_name", "reviewed_at", "resubmit_by")
    return {k: review.get(k) for k in keep}


def decided_request(request: Document, decision: Document) -> Document:
    """The request as it reads once ``decision`` is made."""
    return {
        **request,
        "state": decision["decision"],
        "decision_reason": decision.get("reason", ""),
        "decided_by": decision["decided_by"],
        "decided_by_name": decision.get("decided_by_name", ""),
        "decided_at": decision["decided_at"],
        "new_due_at": decision.get("new_due_at"),
        "new_closes_at": decision.get("new_closes_at"),
    }


class ReviewStore(abc.ABC):
    # --- reviews ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def add_review(self, review: Document) -> None:
        """Store a review; :class:`AlreadyRecorded` if this version was reviewed already."""

    @abc.abstractmethod
    async def review(self, period_id: str, review_id: str) -> Document | None: ...

    @abc.abstractmethod
    async def reviews(self, period_id: str, unit_id: str | None = None) -> list[Document]:
        """The period's reviews (of one unit), oldest version first."""

    @abc.abstractmethod
    async def mark_head(self, period_id: str, unit_id: str, hint: Document) -> None:
        """Put the review hint on the unit's head (see the module docstring)."""

    # --- exceptions -------------------------------------------------------------------------

    @abc.abstractmethod
    async def put_exception(self, exception: Document) -> None: ...

    @abc.abstractmethod
    async def exception(self, period_id: str, unit_id: str) -> Document | None: ...

    @abc.abstractmethod
    async def exceptions(self, period_id: str) -> list[Document]: ...

    # --- extensions -------------------------------------------------------------------------

    @abc.abstractmethod
    async def put_request(self, request: Document, event_id: str) -> None:
        """Make ``request`` the unit's latest (keeping the extension in force)."""

    @abc.abstractmethod
    async def extension(self, period_id: str, unit_id: str) -> Document | None:
        """The unit's latest request and the extension in force, if any."""

    @abc.abstractmethod
    async def extensions(self, period_id: str) -> list[Document]: ...

    @abc.abstractmethod
    async def add_decision(self, decision: Document) -> None:
        """Store a decision; :class:`AlreadyRecorded` if the request was decided already."""

    @abc.abstractmethod
    async def decision(self, period_id: str, request_id: str) -> Document | None: ...

    @abc.abstractmethod
    async def apply_decision(self, decision: Document) -> None:
        """Copy the decision onto the request (and the extension in force, if approved)."""


class MongoReviewStore(ReviewStore):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    def _in(self, prefix: str, period_id: str) -> AsyncCollection[Document]:
        return self._db[prefix + period_id]

    @staticmethod
    def reviews_name(period_id: str) -> str:
        return REVIEWS + period_id

    @staticmethod
    def exceptions_name(period_id: str) -> str:
        return EXCEPTIONS + period_id

    @staticmethod
    def extensions_name(period_id: str) -> str:
        return EXTENSIONS + period_id

    @staticmethod
    def decisions_name(period_id: str) -> str:
        return DECISIONS + period_id

    async def add_review(self, review: Document) -> None:
        try:
            await self._in(REVIEWS, review["period_id"]).insert_one(review)
        except DuplicateKeyError as error:
            raise AlreadyRecorded(review["_id"]) from error

    async def review(self, period_id: str, review_id: str) -> Document | None:
        return await self._in(REVIEWS, period_id).find_one({"_id": review_id})

    async def reviews(self, period_id: str, unit_id: str | None = None) -> list[Document]:
        query = {} if unit_id is None else {"unit_id": unit_id}
        found = await self._in(REVIEWS, period_id).find(query).to_list()
        return sorted(found, key=lambda r: (r["unit_id"], r["revision"]))

    async def mark_head(self, period_id: str, unit_id: str, hint: Document) -> None:
        await self._in(HEADS, period_id).update_one({"_id": unit_id}, {"$set": {"review": hint}})

    async def put_exception(self, exception: Document) -> None:
        fields = {k: v for k, v in exception.items() if k != "_id"}
        await self._in(EXCEPTIONS, exception["period_id"]).update_one(
            {"_id": exception["_id"]}, {"$set": fields}, upsert=True
        )

    async def exception(self, period_id: str, unit_id: str) -> Document | None:
        return await self._in(EXCEPTIONS, period_id).find_one({"_id": unit_id})

    async def exceptions(self, period_id: str) -> list[Document]:
        return await self._in(EXCEPTIONS, period_id).find({}).sort("_id", 1).to_list()

    async def put_request(self, request: Document, event_id: str) -> None:
        await self._in(EXTENSIONS, request["period_id"]).update_one(
            {"_id": request["unit_id"]},
            {
                "$set": {
                    "plan_id": request["plan_id"],
                    "period_id": request["period_id"],
                    "unit_id": request["unit_id"],
                    "request": request,
                    "event_id": event_id,
                }
            },
            upsert=True,
        )

    async def extension(self, period_id: str, unit_id: str) -> Document | None:
        found = await self._in(EXTENSIONS, period_id).find_one({"_id": unit_id})
        return await self._caught_up(found)

    async def extensions(self, period_id: str) -> list[Document]:
        found = await self._in(EXTENSIONS, period_id).find({}).sort("_id", 1).to_list()
        return [d for d in [await self._caught_up(doc) for doc in found] if d is not None]

    async def _caught_up(self, found: Document | None) -> Document | None:
        """``found`` with its request's decision copied, if one was recorded and not copied."""
        request = (found or {}).get("request") or {}
        if found is None or request.get("state") != PENDING:
            return found
        decision = await self.decision(found["period_id"], request["request_id"])
        if decision is None:
            return found
        await self.apply_decision(decision)
        return await self._in(EXTENSIONS, found["period_id"]).find_one({"_id": found["_id"]})

    async def add_decision(self, decision: Document) -> None:
        try:
            await self._in(DECISIONS, decision["period_id"]).insert_one(decision)
        except DuplicateKeyError as error:
            raise AlreadyRecorded(decision["_id"]) from error

    async def decision(self, period_id: str, request_id: str) -> Document | None:
        return await self._in(DECISIONS, period_id).find_one({"_id": request_id})

    async def apply_decision(self, decision: Document) -> None:
        extensions = self._in(EXTENSIONS, decision["period_id"])
        current = await extensions.find_one({"_id": decision["unit_id"]})
        request = (current or {}).get("request") or {}
        if current is None or request.get("request_id") != decision["_id"]:
            return  # a later request replaced it: its decision stays in the decisions
        changes: dict[str, Any] = {"request": decided_request(request, decision)}
        if decision["decision"] == "approved":
            changes["granted"] = {
                "request_id": decision["_id"],
                "due_at": decision["new_due_at"],
                "closes_at": decision["new_closes_at"],
            }
        await extensions.update_one({"_id": decision["unit_id"]}, {"$set": changes})
