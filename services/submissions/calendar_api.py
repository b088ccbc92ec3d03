"""Calendar feed links: submissions, which alone holds the signing key, issues a unit's feed
token (``services.common.feed_tokens``); the deadlines service serves the feed.

An officer gets the link of their own unit, office staff and admins of any unit; the
province's read-only account gets none (it follows no unit's deadlines). An officer asking
for another unit's link gets the 404 of an unknown unit, and the attempt is audited, as for
that unit's reports (``access``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from services.common.auth import Principal, Role, SignedIn, forbidden
from services.common.clock import Clock
from services.common.errors import not_ready, problems
from services.common.feed_tokens import issue_feed_token
from services.common.reference import Catalog
from services.submissions.access import AuditDep, deny, not_found


class CalendarLinkPublic(BaseModel):
    unit_id: str
    url: str
    """The address to subscribe to in a calendar app (it carries the token)."""
    token: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class CalendarLinks:
    key: Ed25519PrivateKey
    deadlines_url: str
    catalog: Catalog
    clock: Clock

    def reports(self, unit_id: str) -> bool:
        return any(
            u.id == unit_id for plan in self.catalog.plans.values() for u in plan.reporting_units()
        )

    def may_issue(self, principal: Principal, unit_id: str) -> bool:
        return principal.role in {Role.OFFICE, Role.ADMIN} or principal.can_file_for(unit_id)

    def issue(self, principal: Principal, unit_id: str) -> CalendarLinkPublic:
        token, expires_at = issue_feed_token(
            self.key, unit_id=unit_id, subject=principal.subject, now=self.clock.now()
        )
        base = self.deadlines_url.rstrip("/")
        url = f"{base}/api/v1/units/{quote(unit_id)}/calendar.ics?token={token}"
        return CalendarLinkPublic(unit_id=unit_id, url=url, token=token, expires_at=expires_at)


def _links(request: Request) -> CalendarLinks:
    found: CalendarLinks | None = getattr(request.app.state, "calendar_links", None)
    if found is None:
        raise not_ready()
    return found


router = APIRouter(prefix="/api/v1", tags=["calendar feeds"])


@router.post(
    "/units/{unit_id}/calendar-token",
    response_model=CalendarLinkPublic,
    responses=problems(404),
    summary="A link to subscribe to the unit's deadlines in a calendar app (a year long)",
)
async def calendar_token(
    unit_id: str,
    principal: SignedIn,
    links: Annotated[CalendarLinks, Depends(_links)],
    request: Request,
    audit: AuditDep,
) -> CalendarLinkPublic:
    if principal.role is Role.READER:
        raise forbidden()
    # Another unit's officer learns nothing about that unit: the same 404 as an unknown one.
    if not links.may_issue(principal, unit_id):
        raise await deny(audit, principal, request, unit_id=unit_id, reason="calendar")
    if not links.reports(unit_id):
        raise not_found()
    return links.issue(principal, unit_id)
