"""The JSON API of versions, review, filing exceptions and extensions (issue 9, parts 6-7).

Who may do what, decided here for every request:
- reading a unit's versions, a diff or its standing: its own officer, and every role that
  reads all (office, admins, the province); another unit's officer gets 404, audited;
- reviewing and granting exceptions, deciding extensions: office staff (and admins);
- asking for an extension: the unit's own officer.
Every decision, and every refused attempt at one, goes to the audit trail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, status

from contracts.plan import Plan
from services.common.auth import Principal, ReadsAll, SignedIn, Staff
from services.common.errors import ApiProblem, not_ready, problems
from services.common.mongo import Document
from services.submissions import review_handlers as office_
from services.submissions.access import AuditDep, ensure_files, ensure_period, ensure_reads
from services.submissions.audit import Action, AuditTrail
from services.submissions.models import local_text
from services.submissions.review import (
    Conflicting,
    Invalid,
    Missing,
    Refused,
    ReviewState,
    previous_from,
    terms_from,
)
from services.submissions.review_handlers import Office, resolve
from services.submissions.review_models import (
    ExceptionCreate,
    ExceptionPublic,
    ExtensionDecisionCreate,
    ExtensionRequestCreate,
    ExtensionRequestPublic,
    ReviewCreate,
    ReviewPublic,
    StandingPublic,
    VersionDetail,
    VersionPublic,
    VersionsPublic,
)
from services.submissions.versions import VersionDiff, diff


def _office(request: Request) -> Office:
    found: Office | None = getattr(request.app.state, "office", None)
    if found is None:
        raise not_ready()
    return found


OfficeDep = Annotated[Office, Depends(_office)]


# The unit is checked in a dependency, before the body or the query is: another unit's officer
# gets 404 whatever they send.
async def _reads_unit(
    period_id: str, unit_id: str, request: Request, principal: SignedIn, audit: AuditDep
) -> Principal:
    await ensure_reads(audit, principal, request, unit_id, period_id)
    return principal


async def _files_for_unit(
    period_id: str, unit_id: str, request: Request, principal: SignedIn, audit: AuditDep
) -> Principal:
    await ensure_files(audit, principal, request, unit_id, period_id)
    return principal


async def _staff_of_plan(
    period_id: str, unit_id: str, request: Request, principal: Staff, audit: AuditDep
) -> Principal:
    await ensure_period(audit, principal, request, period_id, unit_id)
    return principal


async def _reads_period(
    period_id: str, request: Request, principal: ReadsAll, audit: AuditDep
) -> Principal:
    await ensure_period(audit, principal, request, period_id)
    return principal


ReadsUnit = Annotated[Principal, Depends(_reads_unit)]
StaffOfPlan = Annotated[Principal, Depends(_staff_of_plan)]
"""Office staff of the period's plan (its consolidating unit), or an admin."""
ReadsPeriod = Annotated[Principal, Depends(_reads_period)]
FilesForUnit = Annotated[Principal, Depends(_files_for_unit)]

router = APIRouter(prefix="/api/v1", tags=["review"])

UNIT = "/periods/{period_id}/units/{unit_id}"
READS = problems(401, 404, 422)
DECIDES = problems(401, 403, 404, 409, 422)


def _problem(refused: Refused) -> ApiProblem:
    status_of = {Missing: 404, Conflicting: 409, Invalid: 422}
    return ApiProblem(status_of.get(type(refused), 422), refused.code, refused.message)


@dataclass(frozen=True)
class _Audited:
    """The audit records of one decision, made or refused: who, what, where, from which
    request."""

    audit: AuditTrail
    action: Action
    principal: Principal
    request: Request
    period_id: str
    unit_id: str

    async def decided(self, **details: Any) -> None:
        await self._record(**details)

    async def refused(self, refused: Refused) -> ApiProblem:
        await self._record(outcome="refused", reason=refused.code)
        return _problem(refused)

    async def _record(self, **details: Any) -> None:
        await self.audit.record(
            self.action,
            actor=self.principal,
            request=self.request,
            unit_id=self.unit_id,
            period_id=self.period_id,
            **details,
        )


def _resolved(office: Office, period_id: str, unit_id: str) -> tuple[Plan, Any]:
    try:
        return resolve(office.catalog, period_id, unit_id)
    except Refused as refused:
        raise _problem(refused) from None


# --- versions -------------------------------------------------------------------------------


def _review_public(doc: Document) -> ReviewPublic:
    return ReviewPublic(
        period_id=doc["period_id"],
        unit_id=doc["unit_id"],
        submission_id=doc["submission_id"],
        revision=doc["revision"],
        decision=doc["decision"],
        comment=doc.get("comment", ""),
        reviewer=doc["reviewer"],
        reviewer_name=doc.get("reviewer_name", ""),
        reviewed_at=doc["reviewed_at"],
        resubmit_by=doc.get("resubmit_by"),
    )


def _version(plan: Plan, doc: Document, review: Document | None) -> VersionPublic:
    return VersionPublic(
        revision=doc["revision"],
        submission_id=doc["_id"],
        receipt_no=doc["receipt_no"],
        received_at=doc["received_at"],
        received_at_local=local_text(doc["received_at"], plan.tz),
        due_at=doc["due_at"],
        on_time=doc["on_time"],
        submitted_by=doc.get("submitted_by"),
        review=_review_public(review) if review else None,
    )


@router.get(f"{UNIT}/versions", response_model=VersionsPublic, responses=READS)
async def list_versions(
    period_id: str,
    unit_id: str,
    office: OfficeDep,
    _: ReadsUnit,
) -> VersionsPublic:
    """Every version of the unit's report in the period, oldest first, with its review."""
    plan, period = _resolved(office, period_id, unit_id)
    history = await office.submissions.history(period.id, unit_id)
    reviews = {r["revision"]: r for r in await office.store.reviews(period.id, unit_id)}
    latest = history[-1]["revision"] if history else None
    decided = reviews.get(latest) if latest else None
    return VersionsPublic(
        period_id=period.id,
        unit_id=unit_id,
        state=ReviewState(decided["decision"]) if decided else ReviewState.SUBMITTED,
        versions=[_version(plan, d, reviews.get(d["revision"])) for d in history],
    )


async def _one_version(office: Office, period_id: str, unit_id: str, revision: int) -> Document:
    for doc in await office.submissions.history(period_id, unit_id):
        if doc["revision"] == revision:
            return doc
    raise ApiProblem(404, "version_not_found", f"Không có phiên bản {revision} của báo cáo này.")


@router.get(f"{UNIT}/versions/{{revision}}", response_model=VersionDetail, responses=READS)
async def get_version(
    period_id: str,
    unit_id: str,
    revision: int,
    office: OfficeDep,
    _: ReadsUnit,
) -> VersionDetail:
    """One version in full: what the unit reported on each task."""
    plan, period = _resolved(office, period_id, unit_id)
    doc = await _one_version(office, period.id, unit_id, revision)
    review = await office.store.review(period.id, f"{unit_id}|{revision}")
    return VersionDetail(
        **_version(plan, doc, review).model_dump(),
        period_id=period.id,
        unit_id=unit_id,
        tasks=doc["tasks"],
        attachments=doc.get("attachments") or [],
    )


@router.get(f"{UNIT}/diff", response_model=VersionDiff, responses=READS)
async def diff_versions(
    period_id: str,
    unit_id: str,
    office: OfficeDep,
    reader: ReadsUnit,
    from_: Annotated[int, Query(alias="from", ge=1)],
    to: Annotated[int, Query(ge=1)],
) -> VersionDiff:
    """What changed from version ``from`` to version ``to``, task by task."""
    _plan, period = _resolved(office, period_id, unit_id)
    history = {d["revision"]: d for d in await office.submissions.history(period.id, unit_id)}
    for revision in (from_, to):
        if revision not in history:
            raise ApiProblem(
                404, "version_not_found", f"Không có phiên bản {revision} của báo cáo này."
            )
    return diff(history[from_], history[to])


# --- review ---------------------------------------------------------------------------------


@router.post(f"{UNIT}/review", response_model=ReviewPublic, responses=DECIDES)
async def review_report(
    period_id: str,
    unit_id: str,
    body: ReviewCreate,
    request: Request,
    office: OfficeDep,
    principal: StaffOfPlan,
    audit: AuditDep,
) -> ReviewPublic:
    """Accept the unit's latest version, or return it with a comment; the unit is told."""
    decision = ReviewState.ACCEPTED if body.decision == "accept" else ReviewState.RETURNED
    trail = _Audited(audit, Action.REVIEW, principal, request, period_id, unit_id)
    try:
        doc, created = await office_.review(
            office,
            period_id,
            unit_id,
            revision=body.revision,
            decision=decision,
            comment=body.comment,
            by=principal,
        )
    except Refused as refused:
        raise await trail.refused(refused) from None
    if created:
        await trail.decided(
            revision=doc["revision"],
            decision=doc["decision"],
            comment=doc["comment"],
        )
    return _review_public(doc)


# --- exceptions -----------------------------------------------------------------------------


def _exception_public(plan: Plan, doc: Document, now: dt.datetime) -> ExceptionPublic:
    return ExceptionPublic(
        period_id=doc["period_id"],
        unit_id=doc["unit_id"],
        exception_id=doc["exception_id"],
        reason=doc["reason"],
        until=doc["until"],
        until_local=local_text(doc["until"], plan.tz),
        granted_by=doc["granted_by"],
        granted_by_name=doc.get("granted_by_name", ""),
        granted_at=doc["granted_at"],
        in_force=now < doc["until"],
    )


@router.post(
    f"{UNIT}/exception",
    status_code=status.HTTP_201_CREATED,
    response_model=ExceptionPublic,
    responses=DECIDES,
)
async def grant_exception(
    period_id: str,
    unit_id: str,
    body: ExceptionCreate,
    request: Request,
    office: OfficeDep,
    principal: StaffOfPlan,
    audit: AuditDep,
) -> ExceptionPublic:
    """Let the unit file for the period after its lock, until the end of ``until``."""
    trail = _Audited(audit, Action.EXCEPTION, principal, request, period_id, unit_id)
    try:
        doc = await office_.grant_exception(
            office, period_id, unit_id, reason=body.reason, last_day=body.until, by=principal
        )
    except Refused as refused:
        raise await trail.refused(refused) from None
    await trail.decided(
        reason=doc["reason"],
        until=doc["until"],
    )
    plan, _ = _resolved(office, period_id, unit_id)
    return _exception_public(plan, doc, office.clock.now())


@router.get(
    "/periods/{period_id}/exceptions",
    response_model=list[ExceptionPublic],
    responses=problems(401, 403, 404),
)
async def list_exceptions(
    period_id: str, office: OfficeDep, _: ReadsPeriod
) -> list[ExceptionPublic]:
    """The period's filing exceptions, one per unit (the latest granted)."""
    plan = _plan_of(office, period_id)
    now = office.clock.now()
    return [_exception_public(plan, d, now) for d in await office.store.exceptions(period_id)]


def _plan_of(office: Office, period_id: str) -> Plan:
    found = office.catalog.period(period_id)
    if found is None:
        raise ApiProblem(404, "unknown_period", f"Không tìm thấy kỳ báo cáo “{period_id}”.")
    return found[0]


# --- extensions -----------------------------------------------------------------------------


def _request_public(request: Document) -> ExtensionRequestPublic:
    return ExtensionRequestPublic.model_validate(
        {k: v for k, v in request.items() if k in ExtensionRequestPublic.model_fields}
    )


@router.post(
    f"{UNIT}/extension-request",
    status_code=status.HTTP_201_CREATED,
    response_model=ExtensionRequestPublic,
    responses=DECIDES,
)
async def request_extension(
    period_id: str,
    unit_id: str,
    body: ExtensionRequestCreate,
    request: Request,
    office: OfficeDep,
    principal: FilesForUnit,
    audit: AuditDep,
) -> ExtensionRequestPublic:
    """The unit asks for a later due date, with a reason (one pending request at a time)."""
    trail = _Audited(audit, Action.EXTENSION_REQUESTED, principal, request, period_id, unit_id)
    try:
        doc = await office_.request_extension(
            office, period_id, unit_id, reason=body.reason, due_before=body.due_before, by=principal
        )
    except Refused as refused:
        raise await trail.refused(refused) from None
    await trail.decided(
        request_id=doc["request_id"],
        reason=doc["reason"],
        wanted_due_at=doc["wanted_due_at"],
    )
    return _request_public(doc)


@router.post(
    f"{UNIT}/extension-request/decision",
    response_model=ExtensionRequestPublic,
    responses=DECIDES,
)
async def decide_extension(
    period_id: str,
    unit_id: str,
    body: ExtensionDecisionCreate,
    request: Request,
    office: OfficeDep,
    principal: StaffOfPlan,
    audit: AuditDep,
) -> ExtensionRequestPublic:
    """Approve the unit's pending request (new due date) or refuse it (with a reason)."""
    trail = _Audited(audit, Action.EXTENSION_DECIDED, principal, request, period_id, unit_id)
    try:
        decision, created = await office_.decide_extension(
            office,
            period_id,
            unit_id,
            request_id=body.request_id,
            approve=body.decision == "approve",
            due_before=body.due_before,
            reason=body.reason,
            by=principal,
        )
    except Refused as refused:
        raise await trail.refused(refused) from None
    if created:
        await trail.decided(
            request_id=body.request_id,
            decision=decision["decision"],
            reason=decision["reason"],
            new_due_at=decision.get("new_due_at"),
        )
    current = await office.store.extension(period_id, unit_id)
    return _request_public((current or {}).get("request") or {})


@router.get(
    "/periods/{period_id}/extension-requests",
    response_model=list[ExtensionRequestPublic],
    responses=problems(401, 403, 404),
)
async def list_extension_requests(
    period_id: str, office: OfficeDep, _: ReadsPeriod
) -> list[ExtensionRequestPublic]:
    """Each unit's latest extension request in the period, pending or decided."""
    _plan_of(office, period_id)
    return [
        _request_public(d["request"])
        for d in await office.store.extensions(period_id)
        if d.get("request")
    ]


# --- the unit's standing --------------------------------------------------------------------


@router.get(f"{UNIT}/standing", response_model=StandingPublic, responses=READS)
async def standing(
    period_id: str,
    unit_id: str,
    office: OfficeDep,
    _: ReadsUnit,
) -> StandingPublic:
    """The unit's due and lock instants (an extension's if approved), its exception and
    latest extension request, and the review state of its latest version."""
    plan, period = _resolved(office, period_id, unit_id)
    now = office.clock.now()
    extension = await office.store.extension(period.id, unit_id)
    exception = await office.store.exception(period.id, unit_id)
    terms = terms_from(extension, exception)
    previous = previous_from(await office.submissions.head(period.id, unit_id))
    return StandingPublic(
        period_id=period.id,
        unit_id=unit_id,
        due_at=terms.due(period),
        due_local=f"trước ngày {terms.due(period).astimezone(plan.tz):%d/%m/%Y}",
        closes_at=terms.lock(period),
        closes_local=local_text(terms.lock(period), plan.tz),
        extended=terms.due_at is not None,
        may_file_now=period.opens_at <= now and terms.may_file(period, now),
        review_state=previous.state if previous else None,
        latest_revision=previous.revision if previous else None,
        exception=_exception_public(plan, exception, now) if exception else None,
        extension_request=_request_public(extension["request"])
        if extension and extension.get("request")
        else None,
    )
