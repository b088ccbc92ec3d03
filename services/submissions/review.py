"""What the office decides about a unit's report, and what those decisions change. Pure.

- **Review.** The latest version of a unit's report is *submitted* until office staff accept it
  or return it with a comment; a new version is *submitted* again.
- **Timeliness of a resubmission.** A version is on time when it arrives before the unit's due
  instant. A version that follows a *returned* one and arrives before the return's
  ``resubmit_by`` (the return plus ``resubmit_grace_days`` days) keeps the timeliness of the
  version returned instead: returning a report must not make a unit late that answers promptly.
- **Lock.** A period takes reports from its opening until its lock instant (the plan's
  ``closes_days_after_due`` grace days after the due day). After it, a unit files only under an
  exception office staff granted to it for the period, until the exception's end.
- **Extension.** An approved extension gives one unit a later due instant for one period, and
  a lock the same grace days after it (never earlier than the period's own lock).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from contracts.plan import Plan
from services.common.periods import Period


class ReviewState(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    RETURNED = "returned"


STATE_LABELS = {
    ReviewState.SUBMITTED: "Chờ xem xét",
    ReviewState.ACCEPTED: "Đã chấp nhận",
    ReviewState.RETURNED: "Đã trả lại để chỉnh sửa",
}


class Refused(Exception):
    """A decision that cannot be made; ``code`` for machines, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class Missing(Refused):
    """What the decision is about does not exist (no such period, unit or version)."""


class Conflicting(Refused):
    """The decision contradicts the current state (stale version, already decided...)."""


class Invalid(Refused):
    """The decision itself is incomplete or impossible (no comment, a date too early...)."""


@dataclass(frozen=True)
class UnitTerms:
    """What office staff granted one unit for one period: an extension, an exception."""

    due_at: dt.datetime | None = None
    """An approved extension's due instant."""
    closes_at: dt.datetime | None = None
    """An approved extension's lock instant."""
    exception_until: dt.datetime | None = None

    def due(self, period: Period) -> dt.datetime:
        return self.due_at or period.due_at

    def lock(self, period: Period) -> dt.datetime:
        return max(period.closes_at, self.closes_at or period.closes_at)

    def may_file(self, period: Period, now: dt.datetime) -> bool:
        """Whether the unit may file at ``now`` (the period must have opened)."""
        if now < self.lock(period):
            return True
        return self.exception_until is not None and now < self.exception_until


NO_TERMS = UnitTerms()


def terms_from(
    extension: Mapping[str, Any] | None, exception: Mapping[str, Any] | None
) -> UnitTerms:
    """The terms stored documents describe (see ``review_store``)."""
    granted = (extension or {}).get("granted") or {}
    return UnitTerms(
        due_at=_aware(granted.get("due_at")),
        closes_at=_aware(granted.get("closes_at")),
        exception_until=_aware((exception or {}).get("until")),
    )


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def local_midnight(day: dt.date, plan: Plan) -> dt.datetime:
    """The start of ``day`` in the plan's time zone, in UTC."""
    return dt.datetime.combine(day, dt.time(0), plan.tz).astimezone(dt.UTC)


def extension_instants(
    plan: Plan, period: Period, due_before: dt.date
) -> tuple[dt.datetime, dt.datetime]:
    """(due, lock) of an extension "before ``due_before``", as the plan counts its own: due at
    the start of that local day, lock the kind's grace days later, never before the period's."""
    if local_midnight(due_before, plan) <= period.due_at:
        raise Invalid(
            "extension_not_later",
            f"Hạn mới phải sau hạn hiện tại (trước ngày "
            f"{period.due_at.astimezone(plan.tz):%d/%m/%Y}).",
        )
    grace = dt.timedelta(days=period.kind.closes_days_after_due)
    lock = local_midnight(due_before + grace, plan)
    return local_midnight(due_before, plan), max(lock, period.closes_at)


def exception_end(plan: Plan, last_day: dt.date) -> dt.datetime:
    """An exception "until ``last_day``" lasts to the end of that local day."""
    return local_midnight(last_day + dt.timedelta(days=1), plan)


def resubmit_by(reviewed_at: dt.datetime, grace_days: int) -> dt.datetime:
    return reviewed_at + dt.timedelta(days=grace_days)


@dataclass(frozen=True)
class Previous:
    """The version a new one follows, as far as its timeliness depends on it."""

    revision: int
    on_time: bool
    state: ReviewState
    resubmit_by: dt.datetime | None = None


def previous_from(head: Mapping[str, Any] | None) -> Previous | None:
    """The head document (``heads.<period>``) with the review hint it may carry."""
    if head is None:
        return None
    review = head.get("review") or {}
    current = review.get("revision") == head["revision"]
    return Previous(
        revision=head["revision"],
        on_time=bool(head.get("on_time")),
        state=ReviewState(review["decision"]) if current else ReviewState.SUBMITTED,
        resubmit_by=_aware(review.get("resubmit_by")) if current else None,
    )


def on_time(received_at: dt.datetime, due_at: dt.datetime, previous: Previous | None) -> bool:
    """Whether a new version is on time (see the module docstring)."""
    if (
        previous is not None
        and previous.state is ReviewState.RETURNED
        and previous.resubmit_by is not None
        and received_at < previous.resubmit_by
    ):
        return previous.on_time
    return received_at < due_at


def check_review(
    head: Mapping[str, Any] | None, revision: int, decision: ReviewState, comment: str
) -> None:
    """A review of ``revision`` may be recorded now, or :class:`Refused`."""
    if decision is ReviewState.SUBMITTED:
        raise Invalid("invalid_decision", "Chỉ có thể chấp nhận hoặc trả lại báo cáo.")
    if decision is ReviewState.RETURNED and not comment.strip():
        raise Invalid(
            "comment_required", "Khi trả lại báo cáo cần ghi rõ nội dung đề nghị chỉnh sửa."
        )
    if head is None:
        raise Missing("no_report", "Đơn vị chưa gửi báo cáo nào cho kỳ này.")
    if revision != head["revision"]:
        raise Conflicting(
            "stale_version",
            f"Chỉ xem xét được phiên bản mới nhất (lần {head['revision']}); "
            f"phiên bản {revision} đã được thay thế hoặc không có.",
        )
