"""In-memory stand-ins for the stores of the office's decisions (reviews, exceptions,
extensions), one per service that keeps them; each subclasses the real port and refuses what
the real store's unique ``_id`` refuses."""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable

from contracts.events import (
    ExtensionDecidedPayload,
    FilingExceptionGrantedPayload,
    ReportReviewedPayload,
)
from services.common.mongo import Document, to_millis
from services.consolidate.domain import UnitTerms
from services.consolidate.store import TermsStore as ConsolidateTerms
from services.deadlines.domain import Reopened, UnitDue
from services.deadlines.store import TermsStore as DeadlinesTerms
from services.submissions.review_store import (
    PENDING,
    AlreadyRecorded,
    ReviewStore,
    decided_request,
)
from tests.support.fakes import FakeSubmissionsStore


class FakeReviewStore(ReviewStore):
    """Keeps the head hint on ``submissions``' heads, as the real store does on MongoDB."""

    def __init__(self, submissions: FakeSubmissionsStore) -> None:
        self.submissions = submissions
        self.reviews_: dict[tuple[str, str], Document] = {}
        self.exceptions_: dict[tuple[str, str], Document] = {}
        self.extensions_: dict[tuple[str, str], Document] = {}
        self.decisions: dict[tuple[str, str], Document] = {}

    async def add_review(self, review: Document) -> None:
        place = (review["period_id"], review["_id"])
        if place in self.reviews_:
            raise AlreadyRecorded(review["_id"])
        self.reviews_[place] = copy.deepcopy(review)

    async def review(self, period_id: str, review_id: str) -> Document | None:
        return copy.deepcopy(self.reviews_.get((period_id, review_id)))

    async def reviews(self, period_id: str, unit_id: str | None = None) -> list[Document]:
        found = [
            copy.deepcopy(r)
            for (p, _), r in self.reviews_.items()
            if p == period_id and unit_id in (None, r["unit_id"])
        ]
        return sorted(found, key=lambda r: (r["unit_id"], r["revision"]))

    async def mark_head(self, period_id: str, unit_id: str, hint: Document) -> None:
        head = self.submissions.heads.get((period_id, unit_id))
        if head is not None:
            head["review"] = copy.deepcopy(hint)

    async def put_exception(self, exception: Document) -> None:
        self.exceptions_[(exception["period_id"], exception["_id"])] = copy.deepcopy(exception)

    async def exception(self, period_id: str, unit_id: str) -> Document | None:
        return copy.deepcopy(self.exceptions_.get((period_id, unit_id)))

    async def exceptions(self, period_id: str) -> list[Document]:
        return [
            copy.deepcopy(d) for (p, _), d in sorted(self.exceptions_.items()) if p == period_id
        ]

    async def put_request(self, request: Document, event_id: str) -> None:
        place = (request["period_id"], request["unit_id"])
        current = self.extensions_.setdefault(place, {"_id": request["unit_id"]})
        current.update(
            plan_id=request["plan_id"],
            period_id=request["period_id"],
            unit_id=request["unit_id"],
            request=copy.deepcopy(request),
            event_id=event_id,
        )

    async def extension(self, period_id: str, unit_id: str) -> Document | None:
        found = self.extensions_.get((period_id, unit_id))
        request = (found or {}).get("request") or {}
        if found is not None and request.get("state") == PENDING:
            decision = self.decisions.get((period_id, request["request_id"]))
            if decision is not None:
                await self.apply_decision(decision)
        return copy.deepcopy(self.extensions_.get((period_id, unit_id)))

    async def extensions(self, period_id: str) -> list[Document]:
        units = [u for (p, u) in sorted(self.extensions_) if p == period_id]
        return [d for u in units if (d := await self.extension(period_id, u)) is not None]

    async def add_decision(self, decision: Document) -> None:
        place = (decision["period_id"], decision["_id"])
        if place in self.decisions:
            raise AlreadyRecorded(decision["_id"])
        self.decisions[place] = copy.deepcopy(decision)

    async def decision(self, period_id: str, request_id: str) -> Document | None:
        return copy.deepcopy(self.decisions.get((period_id, request_id)))

    async def apply_decision(self, decision: Document) -> None:
        current = self.extensions_.get((decision["period_id"], decision["unit_id"]))
        request = (current or {}).get("request") or {}
        if current is None or request.get("request_id") != decision["_id"]:
            return
        current["request"] = decided_request(request, decision)
        if decision["decision"] == "approved":
            current["granted"] = {
                "request_id": decision["_id"],
                "due_at": decision["new_due_at"],
                "closes_at": decision["new_closes_at"],
            }


class FakeDeadlinesTerms(DeadlinesTerms):
    def __init__(self) -> None:
        self.extensions: dict[tuple[str, str], Document] = {}
        self.exceptions: dict[tuple[str, str], Document] = {}

    @staticmethod
    def _keep_latest(
        kept: dict[tuple[str, str], Document], place: tuple[str, str], doc: Document
    ) -> None:
        current = kept.get(place)
        if current is None or current["decided_at"] < doc["decided_at"]:
            kept[place] = doc

    async def record_extension(self, decided: ExtensionDecidedPayload) -> None:
        if decided.decision != "approved" or decided.new_due_at is None:
            return
        self._keep_latest(
            self.extensions,
            (decided.period_id, decided.unit_id),
            {
                "_id": decided.unit_id,
                "request_id": decided.request_id,
                "due_at": to_millis(decided.new_due_at),
                "closes_at": to_millis(decided.new_closes_at or decided.new_due_at),
                "reason": decided.reason,
                "decided_at": to_millis(decided.decided_at),
            },
        )

    async def record_exception(self, granted: FilingExceptionGrantedPayload) -> None:
        self._keep_latest(
            self.exceptions,
            (granted.period_id, granted.unit_id),
            {
                "_id": granted.unit_id,
                "exception_id": granted.exception_id,
                "until": to_millis(granted.until),
                "reason": granted.reason,
                "decided_at": to_millis(granted.granted_at),
            },
        )

    async def extended(self, period_ids: Iterable[str]) -> dict[str, dict[str, UnitDue]]:
        found: dict[str, dict[str, UnitDue]] = {}
        wanted = set(period_ids)
        for (period_id, unit_id), doc in self.extensions.items():
            if period_id in wanted:
                found.setdefault(period_id, {})[unit_id] = UnitDue(doc["due_at"], doc["closes_at"])
        return found

    async def reopened(self, period_ids: Iterable[str]) -> dict[str, dict[str, Reopened]]:
        found: dict[str, dict[str, Reopened]] = {}
        wanted = set(period_ids)
        for (period_id, unit_id), doc in self.exceptions.items():
            if period_id in wanted:
                found.setdefault(period_id, {})[unit_id] = Reopened(doc["until"], doc["decided_at"])
        return found

    async def extension(self, period_id: str, unit_id: str) -> Document | None:
        return copy.deepcopy(self.extensions.get((period_id, unit_id)))

    async def exception(self, period_id: str, unit_id: str) -> Document | None:
        return copy.deepcopy(self.exceptions.get((period_id, unit_id)))


class FakeConsolidateTerms(ConsolidateTerms):
    def __init__(self) -> None:
        self.due: dict[tuple[str, str], tuple[dt.datetime, dt.datetime]] = {}
        self.returned: dict[tuple[str, str, int], dt.datetime] = {}
        self.until: dict[tuple[str, str], tuple[dt.datetime, dt.datetime]] = {}
        self.exceptions_recorded = 0

    async def record_exception(self, granted: FilingExceptionGrantedPayload) -> None:
        self.exceptions_recorded += 1
        place = (granted.period_id, granted.unit_id)
        current = self.until.get(place)
        if current is None or current[1] < granted.granted_at:
            self.until[place] = (to_millis(granted.until), to_millis(granted.granted_at))

    async def record_extension(self, decided: ExtensionDecidedPayload) -> None:
        if decided.decision != "approved" or decided.new_due_at is None:
            return
        place = (decided.period_id, decided.unit_id)
        current = self.due.get(place)
        if current is None or current[1] < decided.decided_at:
            self.due[place] = (to_millis(decided.new_due_at), to_millis(decided.decided_at))

    async def record_return(self, reviewed: ReportReviewedPayload) -> None:
        if reviewed.decision != "returned" or reviewed.resubmit_by is None:
            return
        place = (reviewed.period_id, reviewed.unit_id, reviewed.revision)
        self.returned.setdefault(place, to_millis(reviewed.resubmit_by))

    async def terms(self, period_id: str) -> dict[str, UnitTerms]:
        units = {u for (p, u) in (*self.due, *self.until) if p == period_id}
        units |= {u for (p, u, _) in self.returned if p == period_id}
        return {
            unit: UnitTerms(
                due_at=self.due[(period_id, unit)][0] if (period_id, unit) in self.due else None,
                returned={
                    r: at for (p, u, r), at in self.returned.items() if (p, u) == (period_id, unit)
                },
                exception_until=(
                    self.until[(period_id, unit)][0] if (period_id, unit) in self.until else None
                ),
            )
            for unit in units
        }
