"""Who gets which message for an event, and what it says. Pure: rendering only, no sending."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Collection
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
    DeadlineSummary,
    ExtensionDecided,
    FilingExceptionGranted,
    ReportConsolidated,
    ReportReviewed,
    SubmissionReceived,
)
from contracts.plan import Contact, Plan, Unit
from contracts.report_v2 import ReportConsolidatedV2
from services.common.periods import find_period

TEMPLATES = Path(__file__).with_name("templates")
REPORTS = (ReportConsolidated, ReportConsolidatedV2)
"""The district report in either version: notify reads v2 (published for every version); a
notice waiting in the ledger since before v2 was caused by a v1 event. Both carry what the
notice says (the counts and the document)."""


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
    reply_to: str = ""
    """The consolidating office's address, so that a reply reaches people (plan data)."""
    reply_to_name: str = ""


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


_URL = re.compile(r"https?://[^\s<>\"]+")


@cache
def _html_environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
    )


def html_of(subject: str, text: str) -> str:
    """The HTML part of a message: the text its template rendered, as paragraphs with links,
    in ``_layout.html`` (inline CSS only: mail clients drop style sheets)."""
    paragraphs = []
    for block in text.strip("\n").split("\n\n"):
        lines = [line.strip() for line in block.split("\n") if line.strip()]
        paragraphs.append(
            {
                "indented": block.startswith("  "),
                "lines": [_linked(line) for line in lines],
            }
        )
    return (
        _html_environment()
        .get_template("_layout.html")
        .render(subject=subject, paragraphs=paragraphs)
    )


def _linked(line: str) -> list[tuple[str, str]]:
    """``line`` as (text, url) pieces: url empty for plain text."""
    pieces: list[tuple[str, str]] = []
    at = 0
    for found in _URL.finditer(line):
        pieces.append((line[at : found.start()], ""))
        pieces.append((found.group(), found.group()))
        at = found.end()
    pieces.append((line[at:], ""))
    return [piece for piece in pieces if piece[0]]


def messages_for(
    event: Event, plan: Plan, portal_url: str = "", channels: Collection[str] = ("email",)
) -> list[Outgoing]:
    """The messages an event calls for on ``channels``, one per contact who receives that
    channel (none if the unit or period is unknown to this plan)."""
    payload = event.payload
    unit = _addressee(event, plan)
    period = find_period(plan, payload.period_id)
    if unit is None or period is None:
        return []
    template = _template_of(event)
    consolidating = plan.unit(plan.consolidating_unit_id)
    portal = portal_url.rstrip("/")
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
        # The unit's intake page: where it files, reads a decision, corrects a report.
        "link": f"{portal}/periods/{period.id}/report",
    }
    if isinstance(event, DeadlineSummary):
        context.update(_summary_context(event, plan, portal))
    if isinstance(event, SubmissionReceived):
        revision = event.payload.revision
        context["correction"] = "" if revision == 1 else f" (bổ sung lần {revision - 1})"
        context["received_local"] = _local(event.payload.received_at, plan).strftime(
            "%H:%M ngày %d/%m/%Y"
        )
    context.update(_decision_context(event, plan, portal))
    reply_name, reply_address = _office_address(plan)
    groups = [(unit, _addressed(unit, template, event))]
    if (leadership := _leadership_told(event, plan)) is not None:
        groups.append((leadership, leadership.contacts))
    messages: list[Outgoing] = []
    told: set[tuple[str, str]] = set()
    for addressee, contacts in groups:
        # The leadership reads the office's summary addressed to itself, in one message.
        context["unit"] = addressee
        subject, text = render(template, context)
        sms = render_sms(template, context)
        # (channel, name, recipient, subject, text, reply-to name and address)
        addressed: list[tuple[Channel, str, str, str, str, str, str]] = [
            ("email", name, address, subject, text, reply_name, reply_address)
            for name, address in _email_contacts(contacts)
            if "email" in channels
        ] + [
            ("sms", name, phone, "", sms, "", "")
            for name, phone in _sms_contacts(contacts)
            if "sms" in channels
        ]
        for channel, name, recipient, title, body, reply_to_name, reply_to in addressed:
            # One message per (event, recipient, channel), whoever else the contact is.
            if (channel, recipient) in told:
                continue
            told.add((channel, recipient))
            messages.append(
                Outgoing(
                    notification_id=f"{event.event_id}|{template}|{channel}|{recipient}",
                    channel=channel,
                    template=template,
                    recipient=recipient,
                    recipient_name=_nfc(" ".join(one_line(name).split())),
                    subject=title,
                    text=body,
                    unit_id=addressee.id,
                    plan_id=plan.id,
                    period_id=period.id,
                    cause=event,
                    reply_to=reply_to,
                    reply_to_name=reply_to_name,
                )
            )
    return messages


def _leadership_told(event: Event, plan: Plan) -> Unit | None:
    """The leadership (the consolidating office's parent in the plan) when the office's
    summary reaches it: one summary of every unit, not one notice per overdue unit."""
    if not isinstance(event, DeadlineSummary) or "leadership" not in event.payload.reaches:
        return None
    office = plan.unit(plan.consolidating_unit_id)
    return plan.unit(office.parent_id) if office and office.parent_id else None


def render_sms(template: str, context: dict[str, Any]) -> str:
    """The SMS of a notice (``<template>.sms``): one line, NFC."""
    text = _environment().get_template(f"{template}.sms").render(context)
    return _nfc(" ".join(one_line(text).split()))


HEADS_TOLD = frozenset({"overdue", "consolidated"})
"""Notices a unit's head (``duty: head``) receives when the event does not say whom it
reaches: the district report sent to the leadership, and an overdue notice from before the
reminder ladder (no ``rung``); the office's head also reads the office's summary once it
escalates (see :func:`_addressed`). Officers receive every notice."""


def _addressed(unit: Unit, template: str, event: Event) -> list[Contact]:
    if isinstance(event, DeadlineApproaching | DeadlineOverdue) and event.payload.rung:
        # A ladder rung says whom it reaches (plan data): the unit's officers and/or its head.
        # The office and the leadership follow the unit through the office's daily summary,
        # one message for every unit, not one per unit (see _leadership_told).
        reaches = event.payload.reaches
        return [
            c
            for c in unit.contacts
            if ("unit_head" in reaches if c.duty == "head" else "officer" in reaches)
        ]
    told = template in HEADS_TOLD or (
        # The office's summary escalates with the ladder: after the due day its head reads it.
        isinstance(event, DeadlineSummary) and "leadership" in event.payload.reaches
    )
    return [c for c in unit.contacts if c.duty != "head" or told]


def _summary_context(event: DeadlineSummary, plan: Plan, portal: str) -> dict[str, Any]:
    """The units that still owe the report, each with its own due date (an extension's), the
    most pressing first; a unit the plan no longer lists is shown by its id."""
    s = event.payload

    def name(unit_id: str) -> str:
        unit = plan.unit(unit_id)
        return unit.name if unit else unit_id

    rows = sorted(s.pending, key=lambda u: (not u.overdue, u.due_at, name(u.unit_id)))
    return {
        "summary_day_local": _local(s.summary_at, plan).strftime("%d/%m/%Y"),
        "summary_local": _local(s.summary_at, plan).strftime("%H:%M ngày %d/%m/%Y"),
        "pending": [
            {
                "name": name(u.unit_id),
                "due_local": _local(u.due_at, plan).strftime("%d/%m/%Y"),
                "overdue": u.overdue,
                "returned": u.returned,
            }
            for u in rows
        ],
        "overdue_count": sum(u.overdue for u in rows),
        # The office follows the period on its status page, not a unit's intake page.
        "link": f"{portal}/periods/{s.period_id}/status",
    }


def _sms_contacts(contacts: list[Contact]) -> list[tuple[str, str]]:
    """(name, number as digits with its +) of the contacts who asked for SMS."""
    return [
        (c.name, re.sub(r"[ .-]", "", c.phone)) for c in contacts if c.phone and "sms" in c.receives
    ]


def _addressee(event: Event, plan: Plan) -> Unit | None:
    """The unit an event is about; a consolidated report goes to the district leadership:
    the body above the consolidating office in the plan's tree (its contacts are the data)."""
    if isinstance(event, REPORTS):
        office = plan.unit(plan.consolidating_unit_id)
        return plan.unit(office.parent_id) if office and office.parent_id else None
    if isinstance(event, DeadlineSummary):
        return plan.unit(plan.consolidating_unit_id)
    return plan.unit(event.payload.unit_id)


def _template_of(event: Event) -> str:
    if isinstance(event, ReportReviewed):
        return "returned" if event.payload.decision == "returned" else "accepted"
    return _TEMPLATE_OF[type(event)]


def _office_address(plan: Plan) -> tuple[str, str]:
    """(name, address) of the consolidating office's first e-mail contact, or blanks."""
    office = plan.unit(plan.consolidating_unit_id)
    if office is None:
        return "", ""
    for contact in office.contacts:
        if contact.email:
            return _nfc(" ".join(one_line(office.name).split())), contact.email
    return "", ""


def _decision_context(event: Event, plan: Plan, portal: str) -> dict[str, Any]:
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
    if isinstance(event, FilingExceptionGranted):
        g = event.payload
        return {"until_local": when(g.until), "granted_local": when(g.granted_at)}
    if isinstance(event, REPORTS):
        r = event.payload
        document = r.document.url if r.document and r.document.url else None
        return {
            "consolidated_local": when(r.consolidated_at),
            "document_link": document or f"{portal}/periods/{r.period_id}/status",
        }
    return {}


def _email_contacts(contacts: list[Contact]) -> list[tuple[str, str]]:
    return [(c.name, c.email) for c in contacts if c.email and "email" in c.receives]


def _local(moment: dt.datetime, plan: Plan) -> dt.datetime:
    return moment.astimezone(plan.tz)


_TEMPLATE_OF: dict[type[Event], str] = {
    SubmissionReceived: "receipt",
    DeadlineApproaching: "reminder",
    DeadlineOverdue: "overdue",
    ExtensionDecided: "extension",
    FilingExceptionGranted: "exception",
    ReportConsolidated: "consolidated",
    ReportConsolidatedV2: "consolidated",
    DeadlineSummary: "summary",
}
