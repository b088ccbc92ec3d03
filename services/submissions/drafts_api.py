"""The report form's draft through the JSON API: what the form saves and resumes, for a client
that fills the report in several sittings without the pages.

A draft is the form's raw values as typed (field name to text, the names the form uses, e.g.
``<task_id>.results`` or ``<task_id>.ind.<code>``), one per period and unit, and the same draft
the form shows: saved here, it is resumed on the page, and filing through either deletes it.
Only the unit's own officer (or its machine client) reads or writes it, as only they open the
form: another unit's officer gets 404 (audited), other roles 403.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, Field

from services.common.auth import SignedIn
from services.common.errors import ApiProblem, not_ready, problems
from services.common.mongo import to_millis
from services.submissions.access import AuditDep, ensure_files
from services.submissions.drafts import MAX_VALUES, Draft, DraftStore
from services.submissions.handlers import Intake
from services.submissions.models import Strict
from services.submissions.web import IntakeDep

MAX_VALUE_LENGTH = 20_000
"""Longer than any field of the form accepts, so a draft never keeps less than was typed."""


class DraftPut(Strict):
    values: dict[
        Annotated[str, Field(min_length=1, max_length=200)],
        Annotated[str, Field(max_length=MAX_VALUE_LENGTH)],
    ] = Field(
        max_length=MAX_VALUES,
        description="the form's fields as typed, by name (e.g. "
        "'ii-1-1-tuyen-truyen-giao-duc.results', 'ii-1-1-tuyen-truyen-giao-duc.ind.so-buoi'); "
        "nothing is validated until the report is filed",
    )


class DraftPublic(BaseModel):
    period_id: str
    unit_id: str
    values: dict[str, str]
    saved_by: str
    saved_at: dt.datetime


def _drafts(request: Request) -> DraftStore:
    found: DraftStore | None = getattr(request.app.state, "drafts", None)
    if found is None:
        raise not_ready()
    return found


DraftsDep = Annotated[DraftStore, Depends(_drafts)]
PATH = "/periods/{period_id}/units/{unit_id}/draft"
WHY = {
    403: "Không phải cán bộ của đơn vị (forbidden), hoặc thiếu mã CSRF.",
    404: "Kỳ báo cáo hay đơn vị không có, đơn vị khác, hoặc (GET) chưa có bản nháp.",
}

router = APIRouter(prefix="/api/v1", tags=["drafts"])


async def _own_unit(
    period_id: str, unit_id: str, request: Request, principal: SignedIn, audit: AuditDep
) -> None:
    await ensure_files(audit, principal, request, unit_id, period_id)


OwnUnit = Annotated[None, Depends(_own_unit)]


def _known(intake: Intake, period_id: str, unit_id: str) -> None:
    found = intake.catalog.period(period_id)
    unit = found[0].unit(unit_id) if found else None
    if found is None or unit is None or unit not in found[0].reporting_units():
        raise ApiProblem(404, "unknown_period", "Không tìm thấy kỳ báo cáo này của đơn vị.")


def _public(period_id: str, unit_id: str, draft: Draft) -> DraftPublic:
    return DraftPublic(
        period_id=period_id,
        unit_id=unit_id,
        values=draft.values,
        saved_by=draft.saved_by,
        saved_at=draft.saved_at,
    )


@router.get(PATH, response_model=DraftPublic, responses=problems(401, 403, 404, why=WHY))
async def get_draft(
    period_id: str, unit_id: str, _: OwnUnit, intake: IntakeDep, drafts: DraftsDep
) -> DraftPublic:
    """The unit's saved draft of the period's report."""
    _known(intake, period_id, unit_id)
    draft = await drafts.get(period_id, unit_id)
    if draft is None:
        raise ApiProblem(404, "draft_not_found", "Đơn vị chưa lưu bản nháp nào cho kỳ này.")
    return _public(period_id, unit_id, draft)


@router.put(PATH, response_model=DraftPublic, responses=problems(401, 403, 404, 422, why=WHY))
async def save_draft(
    period_id: str,
    unit_id: str,
    body: DraftPut,
    _: OwnUnit,
    principal: SignedIn,
    intake: IntakeDep,
    drafts: DraftsDep,
) -> DraftPublic:
    """Replace the unit's draft with these values (what the form's "Lưu nháp" does)."""
    _known(intake, period_id, unit_id)
    now = to_millis(intake.clock.now())  # as stored
    await drafts.save(period_id, unit_id, body.values, principal.subject, now)
    return _public(period_id, unit_id, Draft(dict(body.values), principal.subject, now))


@router.delete(
    PATH,
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(401, 403, 404, why=WHY),
)
async def delete_draft(
    period_id: str, unit_id: str, _: OwnUnit, intake: IntakeDep, drafts: DraftsDep
) -> Response:
    """Discard the unit's draft (none is no error: the answer is the same)."""
    _known(intake, period_id, unit_id)
    await drafts.delete(period_id, unit_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
