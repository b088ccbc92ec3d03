"""A unit's report in a period: its versions and their reviews, what changed between two, and
the office's decisions (accept, return with a comment, an exception, an extension) or the
unit's request for an extension.

Every decision goes through the JSON API's own route function (``review_api``): the same
rules, events and audit records. The page adds the role check the API's dependencies make
(office staff decide, the unit's officer asks) and puts a refusal next to its form.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError

from contracts.plan import Plan
from services.common.auth import Principal, Role
from services.common.errors import ApiProblem
from services.submissions import review_api
from services.submissions.access import AuditDep, ensure_files, ensure_period, ensure_reads
from services.submissions.audit import AuditTrail
from services.submissions.pages.base import (
    PageRoute,
    Poster,
    Viewer,
    allow,
    form_of,
    local,
    redirect,
    render,
)
from services.submissions.report_form import STATUS_LABELS, shown_answer
from services.submissions.review import STATE_LABELS
from services.submissions.review_api import OfficeDep
from services.submissions.review_handlers import Office
from services.submissions.review_models import (
    ExceptionCreate,
    ExtensionDecisionCreate,
    ExtensionRequestCreate,
    ReviewCreate,
)

router = APIRouter(route_class=PageRoute, include_in_schema=False)

FormDep = Annotated[dict[str, str], Depends(form_of)]
UNIT = "/periods/{period_id}/units/{unit_id}"
DONE = {
    "reviewed": "Đã ghi nhận kết quả xem xét; đơn vị được thông báo.",
    "exception": "Đã cho phép đơn vị nộp ngoại lệ.",
    "extension_requested": "Đã gửi đề nghị gia hạn; Cơ quan tổng hợp sẽ xem xét.",
    "extension_decided": "Đã quyết định về đề nghị gia hạn; đơn vị được thông báo.",
}
FIELD_NAMES = {
    "reviewed": "Trường thông tin",
    "comment": "Nội dung đề nghị chỉnh sửa",
    "reason": "Lý do",
    "until": "Ngày cuối được nộp",
    "due_before": "Hạn mới",
    "decision": "Quyết định",
}
_DAY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


def unit_path(period_id: str, unit_id: str) -> str:
    return f"/periods/{period_id}/units/{unit_id}"


class BadDay(ValueError):
    """A date typed in neither ``2027-07-20`` nor ``20/07/2027``."""


def day(text: str) -> dt.date | None:
    """A day from a date field (ISO from a date picker, or as Vietnamese write it)."""
    text = text.strip()
    if not text:
        return None
    found = _DAY.match(text)
    try:
        if found:
            return dt.date(int(found[3]), int(found[2]), int(found[1]))
        return dt.date.fromisoformat(text)
    except ValueError:
        raise BadDay(text) from None


def _invalid(error: ValidationError) -> str:
    found = error.errors()[0]
    name = FIELD_NAMES.get(str(found["loc"][0]) if found["loc"] else "", "Thông tin")
    if found["type"] in ("missing", "string_too_short"):
        return f"{name}: vui lòng nhập."
    if found["type"] == "string_too_long":
        return f"{name}: quá dài."
    return f"{name}: chưa hợp lệ."


async def _unit_page(
    request: Request,
    principal: Principal,
    office: Office,
    audit: AuditTrail,
    period_id: str,
    unit_id: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    done: str = "",
) -> Response:
    # The API checks access in its dependencies, which a direct call skips: checked here.
    await ensure_reads(audit, principal, request, unit_id, period_id)
    versions = await review_api.list_versions(
        period_id=period_id, unit_id=unit_id, office=office, _=principal
    )
    standing = await review_api.standing(
        period_id=period_id, unit_id=unit_id, office=office, _=principal
    )
    plan, period = review_api._resolved(office, period_id, unit_id)
    staff = principal.role in (Role.OFFICE, Role.ADMIN)
    extension = standing.extension_request
    return render(
        request,
        "unit_period.html",
        status=status,
        title=f"{period.title}: {_unit_name(plan, unit_id)}",
        plan=plan,
        period=period,
        unit_name=_unit_name(plan, unit_id),
        versions=list(reversed(versions.versions)),
        latest=versions.versions[-1] if versions.versions else None,
        state_label=STATE_LABELS[versions.state] if versions.versions else "Chưa gửi",
        standing=standing,
        staff=staff,
        own_officer=principal.can_file_for(unit_id),
        pending=extension if extension and extension.state == "pending" else None,
        last_extension=extension,
        errors=errors or {},
        values=values or {},
        done=DONE.get(done, ""),
        local=local,
        today=office.clock.now().astimezone(plan.tz).date().isoformat(),
    )


def _unit_name(plan: Plan, unit_id: str) -> str:
    unit = plan.unit(unit_id)
    return unit.name if unit else unit_id


@router.get(UNIT)
async def unit_period(
    period_id: str,
    unit_id: str,
    request: Request,
    principal: Viewer,
    office: OfficeDep,
    audit: AuditDep,
    done: str = "",
) -> Response:
    return await _unit_page(request, principal, office, audit, period_id, unit_id, done=done)


@dataclass(frozen=True)
class _Posted:
    """A form posted on a unit's page, with what answering it needs."""

    request: Request
    principal: Principal
    office: Office
    audit: AuditTrail
    period_id: str
    unit_id: str
    form: dict[str, str]

    def field(self, name: str) -> str:
        return self.form.get(name, "")

    def api(self) -> dict[str, Any]:
        """The arguments every ``review_api`` route function takes besides its body."""
        return {
            "period_id": self.period_id,
            "unit_id": self.unit_id,
            "request": self.request,
            "office": self.office,
            "principal": self.principal,
            "audit": self.audit,
        }


async def _act(
    posted: _Posted, which: str, done: str, act: Callable[[], Awaitable[object]]
) -> Response:
    """Run ``act`` (build the body, call the API); back to the unit's page, with ``done`` or
    with the refusal next to the form ``which``."""
    try:
        await act()
    except (ValueError, ApiProblem) as error:  # ValidationError and BadDay are ValueErrors
        return await _refused(posted, which, error)
    return redirect(f"{unit_path(posted.period_id, posted.unit_id)}?done={done}")


@router.post(UNIT + "/review")
async def review(
    period_id: str,
    unit_id: str,
    request: Request,
    principal: Poster,
    office: OfficeDep,
    audit: AuditDep,
    form: FormDep,
) -> Response:
    allow(principal, Role.OFFICE, Role.ADMIN)
    await ensure_period(audit, principal, request, period_id, unit_id)
    posted = _Posted(request, principal, office, audit, period_id, unit_id, form)

    async def act() -> None:
        body = ReviewCreate(
            decision=posted.field("decision"),
            revision=int(posted.field("revision") or 0),
            comment=posted.field("comment"),
        )
        await review_api.review_report(body=body, **posted.api())

    return await _act(posted, "review", "reviewed", act)


@router.post(UNIT + "/exception")
async def exception(
    period_id: str,
    unit_id: str,
    request: Request,
    principal: Poster,
    office: OfficeDep,
    audit: AuditDep,
    form: FormDep,
) -> Response:
    allow(principal, Role.OFFICE, Role.ADMIN)
    await ensure_period(audit, principal, request, period_id, unit_id)
    posted = _Posted(request, principal, office, audit, period_id, unit_id, form)

    async def act() -> None:
        body = ExceptionCreate(reason=posted.field("reason"), until=day(posted.field("until")))
        await review_api.grant_exception(body=body, **posted.api())

    return await _act(posted, "exception", "exception", act)


@router.post(UNIT + "/extension-request")
async def extension_request(
    period_id: str,
    unit_id: str,
    request: Request,
    principal: Poster,
    office: OfficeDep,
    audit: AuditDep,
    form: FormDep,
) -> Response:
    await ensure_files(audit, principal, request, unit_id, period_id)
    posted = _Posted(request, principal, office, audit, period_id, unit_id, form)

    async def act() -> None:
        body = ExtensionRequestCreate(
            reason=posted.field("reason"), due_before=day(posted.field("due_before"))
        )
        await review_api.request_extension(body=body, **posted.api())

    return await _act(posted, "extension", "extension_requested", act)


@router.post(UNIT + "/extension-decision")
async def extension_decision(
    period_id: str,
    unit_id: str,
    request: Request,
    principal: Poster,
    office: OfficeDep,
    audit: AuditDep,
    form: FormDep,
) -> Response:
    allow(principal, Role.OFFICE, Role.ADMIN)
    await ensure_period(audit, principal, request, period_id, unit_id)
    posted = _Posted(request, principal, office, audit, period_id, unit_id, form)

    async def act() -> None:
        body = ExtensionDecisionCreate(
            request_id=posted.field("request_id"),
            decision=posted.field("decision"),
            due_before=day(posted.field("due_before")),
            reason=posted.field("reason"),
        )
        await review_api.decide_extension(body=body, **posted.api())

    return await _act(posted, "decision", "extension_decided", act)


async def _refused(posted: _Posted, which: str, error: Exception) -> Response:
    """The unit's page again, the refusal next to the form that was sent."""
    if isinstance(error, ApiProblem):
        if error.status == 404:
            raise error
        message, status = error.message, error.status
    elif isinstance(error, ValidationError):
        message, status = _invalid(error), 422
    elif isinstance(error, BadDay):
        message, status = "Ngày chưa đúng dạng; hãy viết như 20/07/2027.", 422
    else:
        message, status = "Thông tin gửi lên chưa hợp lệ.", 422
    return await _unit_page(
        posted.request,
        posted.principal,
        posted.office,
        posted.audit,
        posted.period_id,
        posted.unit_id,
        status=status,
        errors={which: message},
        values={f"{which}.{k}": v for k, v in posted.form.items()},
    )


# --- what changed between two versions ----------------------------------------------------


@router.get(UNIT + "/diff")
async def version_diff(
    period_id: str,
    unit_id: str,
    request: Request,
    principal: Viewer,
    office: OfficeDep,
    audit: AuditDep,
    from_: Annotated[int, Query(alias="from", ge=1)],
    to: Annotated[int, Query(ge=1)],
) -> Response:
    await ensure_reads(audit, principal, request, unit_id, period_id)
    found = await review_api.diff_versions(
        period_id=period_id, unit_id=unit_id, office=office, reader=principal, from_=from_, to=to
    )
    plan, period = review_api._resolved(office, period_id, unit_id)
    tasks = {t.id: t for t in plan.tasks}
    return render(
        request,
        "version_diff.html",
        title=f"So sánh phiên bản {from_} và {to}",
        plan=plan,
        period=period,
        unit_name=_unit_name(plan, unit_id),
        diff=found,
        tasks=tasks,
        statuses=STATUS_LABELS,
        answer=lambda code, answer: _answer(plan, code, answer),
        field_labels={
            "status": "Tình trạng thực hiện",
            "results": "Kết quả thực hiện",
            "difficulties": "Khó khăn, vướng mắc",
            "proposals": "Đề xuất, kiến nghị",
        },
        indicator_name=lambda code: i.name if (i := plan.indicator(code)) else code,
        back=unit_path(period_id, unit_id),
    )


def _answer(plan: Plan, code: str, answer: dict[str, Any] | None) -> str:
    indicator = plan.indicator(code)
    if answer is None:
        return "(không có)"
    if indicator is None:
        return str(answer)
    return shown_answer(indicator, answer)
