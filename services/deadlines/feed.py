"""A unit's deadlines as an iCalendar feed (RFC 5545), for Outlook, Thunderbird or a phone.

Three events per period the unit reports for: the data cut-off day (the end of the data
window, Decree 09/2019/NĐ-CP), the due day and the lock instant. Days are all-day events,
which every client shows on the right day whatever its own time zone; the lock is an instant,
written in local time with ``TZID=Asia/Ho_Chi_Minh`` and that zone's VTIMEZONE in the file
(Outlook needs the VTIMEZONE; a bare UTC time shows right but reads wrong when printed).

UIDs are derived from the period, the unit and the event's role, never from the dates, so a
client updates an event in place when an extension moves it rather than adding a second one.
Pure: the periods and each unit's extension come in, bytes go out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import icalendar

from contracts.plan import Plan
from services.common.periods import Period
from services.deadlines.domain import UnitDue, unit_period
from services.deadlines.ladder import due_day

PRODID = "-//baocao//lich han bao cao//VI"
UID_DOMAIN = "baocao"
_ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class FeedPeriod:
    plan: Plan
    period: Period
    extension: UnitDue | None = None


def _day(text: dt.date) -> str:
    return f"{text:%d/%m/%Y}"


def _local(moment: dt.datetime, plan: Plan) -> str:
    return f"{moment.astimezone(plan.tz):%H:%M ngày %d/%m/%Y}"


def _event(uid: str, summary: str, description: str, stamp: dt.datetime) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", stamp)
    event.add("summary", summary)
    event.add("description", description)
    event.add("transp", "TRANSPARENT")  # a deadline does not make the officer busy
    return event


def unit_calendar(
    unit_id: str, unit_name: str, periods: list[FeedPeriod], now: dt.datetime
) -> bytes:
    """The feed of ``unit_id``: cut-off, due day and lock of each of ``periods``."""
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"Hạn báo cáo – {unit_name}")
    cal.add("x-wr-timezone", "Asia/Ho_Chi_Minh")
    # Clients poll at their own pace; this is a hint for those that read it (Outlook does).
    cal.add("refresh-interval", dt.timedelta(hours=12), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT12H")
    stamp = now.astimezone(dt.UTC).replace(microsecond=0)
    for item in periods:
        plan, period = item.plan, item.period
        own = unit_period(period, item.extension)
        uid = f"{period.id}.{unit_id}"
        title = period.title

        cutoff = _event(
            f"{uid}.chot-so-lieu@{UID_DOMAIN}",
            f"Chốt số liệu: {title}",
            f"Kỳ số liệu từ {_day(period.data_from)} đến hết {_day(period.data_to)}. "
            f"Hạn nộp: trước {_local(own.due_at, plan)} (giờ Việt Nam).",
            stamp,
        )
        cutoff.add("dtstart", period.data_to)
        cutoff.add("dtend", period.data_to + _ONE_DAY)
        cal.add_component(cutoff)

        last_day = due_day(own, plan.tz)
        moved = " (đã gia hạn)" if item.extension is not None else ""
        due = _event(
            f"{uid}.han-nop@{UID_DOMAIN}",
            f"Hạn nộp{moved}: {title}",
            f"Ngày cuối cùng nộp đúng hạn là {_day(last_day)}: báo cáo phải đến trước "
            f"{_local(own.due_at, plan)} (giờ Việt Nam). Nộp muộn được nhận đến "
            f"{_local(own.closes_at, plan)}.",
            stamp,
        )
        due.add("dtstart", last_day)
        due.add("dtend", last_day + _ONE_DAY)
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"Sắp đến hạn nộp: {title}")
        alarm.add("trigger", dt.timedelta(days=-3))
        due.add_component(alarm)
        cal.add_component(due)

        lock = _event(
            f"{uid}.khoa-so@{UID_DOMAIN}",
            f"Khóa kỳ báo cáo: {title}",
            f"Từ {_local(own.closes_at, plan)} (giờ Việt Nam) hệ thống không nhận báo cáo "
            "của kỳ này nữa, trừ khi cơ quan tổng hợp cho phép ngoại lệ.",
            stamp,
        )
        # An instant: DTSTART alone (RFC 5545 §3.6.1), in the plan's zone.
        lock.add("dtstart", own.closes_at.astimezone(plan.tz))
        cal.add_component(lock)
    cal.add_missing_timezones()
    return bytes(cal.to_ical())
