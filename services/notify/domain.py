"""Who gets which message for an event, and what it says. Pure: rendering only, no sending."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from contracts.envelope import Event
from contracts.events import (
    Channel,
    DeadlineApproaching,
    DeadlineOverdue,
    ExtensionDecided,
    ReportReviewed,
    SubmissionReceived,
)
from contracts.plan import Plan, Unit
from services.common.periods import find_period

TEMPLATES = Path(__file__).with_name("templates")


@dataclass(frozen=True)
class Outgoing:
    """One message to one address, identified so that a redelivered cause sends nothing new."""

    notification_id: str
    channel: Channel
    template: str
    recipient: str
    recipient_name: str
    subject: str
    text: str
    unit_id: str
    plan_id: str
    period_id: str
    cause: Event


_LINE_BREAKING = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
"""Control characters (CR, LF, NEL, NUL...) and Unicode line/paragraph separators."""


def one_line(value: object) -> str:
    """``value`` as text on one line: each run of line breaks or control characters is a space.

    Every value a template prints and every header built from data goes through this, so no
    data (an old stored event, a plan file) can start a line of its own, in a header or in the
    body, whatever the submissions API accepted at the time.
    """
    return _LINE_BREAKING.sub(" ", str(value))


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # noqa: S701 (plain-text mail, never HTML)
        # applied to every {{ ... }}: line breaks come from the template text only
        finalize=one_line,
    )


def render(template: str, context: dict[str, Any]) -> tuple[str, str]:
    """(subject, body); the subject is the template's first ``{# subject: ... #}`` line."""
    source = (TEMPLATES / f"{template}.txt").read_text(encoding="utf-8")
    first, _, _ = source.partition("\n")
    subject_source = first.removeprefix("{# subject:").removesuffix("#}").strip()
    env = _environment()
    subject = env.from_string(subject_source).render(context)
    body = env.get_template(f"{template}.txt").render(context).lstrip("\n")
    return _nfc(" ".join(one_line(subject).split())), _nfc(body)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def messages_for(event: Event, plan: Plan) -> list[Outgoing]:
    """The e-mails an event calls for (none if the unit or period is unknown to this plan)."""
    payload = event.payload
    unit = plan.unit(payload.unit_id)
    period = find_period(plan, payload.period_id)
    if unit is None or period is None:
        return []
    if isinstance(event, ReportReviewed) and event.payload.decision != "returned":
        return []  # an accepted report needs no message; the unit sees it on its page
    template = _TEMPLATE_OF[type(event)]
    consolidating = plan.unit(plan.consolidating_unit_id)
    context: dict[str, Any] = {
        "p": payload,
        "plan": plan,
        "unit": unit,
        "period_title": period.title,
        # The unit's own due instant where the event carries it (an extension's, if any).
        "due_local": _local(getattr(payload, "due_at", None) or period.due_at, plan).strftime(
            "%d/%m/%Y"
        ),
        "consolidating_unit": consolidating.name if consolidating else plan.issuer,
    }
    if isinstance(event, SubmissionReceived):
        revision = event.payload.revision
        context["correction"] = "" if revision == 1 else f" (bổ sung lần {revision - 1})"
        context["received_local"] = _local(event.payload.received_at, plan).strftime(
            "%H:%M ngày %d/%m/%Y"
        )
    context.update(_decision_context(event, plan))
    subject, text = render(template, context)
    return [
        Outgoing(
            notification_id=f"{event.event_id}|{template}|email|{address}",
            channel="email",
            template=template,
            recipient=address,
            recipient_name=_nfc(" ".join(one_line(name).split())),
            subject=subject,
            text=text,
            unit_id=unit.id,
            plan_id=plan.id,
            period_id=period.id,
            cause=event,
        )
        for name, address in _email_contacts(unit)
    ]


def _decision_context(event: Event, plan: Plan) -> dict[str, Any]:
    """What the messages about an office decision print, in local time."""

    def when(moment: dt.datetime | None) -> str:
        return _local(moment, plan).strftime("%H:%M ngày %d/%m/%Y") if moment else ""

    if isinstance(event, ReportReviewed):
        p = event.payload
        return {
            "correction": "" if p.revision == 1 else f" (bổ sung lần {p.revision - 1})",
            "reviewed_local": when(p.reviewed_at),
            "resubmit_by_local": when(p.resubmit_by),
        }
    if isinstance(event, ExtensionDecided):
        d = event.payload
        return {
            "approved": d.decision == "approved",
            "new_due_local": _local(d.new_due_at, plan).strftime("%d/%m/%Y")
            if d.new_due_at
            else "",
            "new_closes_local": when(d.new_closes_at),
        }
    return {}


def _email_contacts(unit: Unit) -> list[tuple[str, str]]:
    return [(c.name, c.email) for c in unit.contacts if c.email and "email" in c.receives]


def _local(moment: dt.datetime, plan: Plan) -> dt.datetime:
    return moment.astimezone(plan.tz)


_TEMPLATE_OF: dict[type[Event], str] = {
    SubmissionReceived: "receipt",
    DeadlineApproaching: "reminder",
    DeadlineOverdue: "overdue",
    ReportReviewed: "returned",
    ExtensionDecided: "extension",
}
