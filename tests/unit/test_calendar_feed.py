"""A unit's calendar feed: the .ics the deadlines service serves, read back by two calendar
libraries, and the feed token that opens it (issued by submissions, refused everywhere else)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import icalendar
import ics
import pytest
from fastapi import FastAPI

from services.common.auth import (
    Role,
    TokenAuthenticator,
    TokenVerifier,
    load_private_key,
    load_public_key,
    write_key_pair,
)
from services.common.clock import FixedClock
from services.common.errors import install_error_handlers
from services.common.feed_tokens import issue_feed_token
from services.common.mongo import Document
from services.common.reference import Catalog, load_plan
from services.deadlines.app import build_app
from services.deadlines.config import DeadlinesSettings
from services.submissions import calendar_api
from services.submissions.audit import AuditTrail
from tests.support.auth import bearer, key_files, token
from tests.support.fakes import FakeTermsStore

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SEED = load_plan(ROOT / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml")
NOW = dt.datetime(2027, 6, 1, 2, 0, tzinfo=dt.UTC)
UNIT, OTHER = "xa-bo-y", "xa-dak-ang"
SIX_MONTHS = "kh-nq35-ngoc-hoi.2027.6-thang"


def feed_token(unit_id: str = UNIT, *, now: dt.datetime = NOW, key: Path | None = None) -> str:
    private = load_private_key(key or key_files()[0])
    return issue_feed_token(private, unit_id=unit_id, subject="canbo", now=now)[0]


@pytest.fixture
async def terms() -> FakeTermsStore:
    store = FakeTermsStore()
    # OTHER's six-month report was extended to before 20/6 (local), lock 5/7.
    store.extensions[SIX_MONTHS] = {
        OTHER: {
            "request_id": "gh-1",
            "due_at": dt.datetime(2027, 6, 19, 17, tzinfo=dt.UTC),
            "closes_at": dt.datetime(2027, 7, 4, 17, tzinfo=dt.UTC),
            "reason": "Lũ",
            "decided_at": NOW,
        }
    }
    return store


@pytest.fixture
async def http(terms: FakeTermsStore) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(
        DeadlinesSettings(namespace="unit"), clock=FixedClock(NOW), catalog=Catalog({SEED.id: SEED})
    )
    app.state.scheduler.terms = terms
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://deadlines"
    ) as client:
        yield client


def events_by_uid(body: bytes) -> dict[str, icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(body)
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


async def test_the_feed_has_cut_off_due_day_and_lock_in_local_time(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get(f"/api/v1/units/{UNIT}/calendar.ics", params={"token": feed_token()})

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    events = events_by_uid(response.content)
    # Last, this and next year's two reports: three events each.
    assert len(events) == 3 * 2 * 3
    base = f"{SIX_MONTHS}.{UNIT}"
    due = events[f"{base}.han-nop@baocao"]
    assert str(due["SUMMARY"]) == "Hạn nộp: Báo cáo 6 tháng năm 2027"
    assert due.decoded("DTSTART") == dt.date(2027, 6, 14)  # "trước 15/6": 14/6 is the last day
    assert "trước 00:00 ngày 15/06/2027" in str(due["DESCRIPTION"])
    lock = events[f"{base}.khoa-so@baocao"]
    start = lock.decoded("DTSTART")
    assert lock["DTSTART"].params["TZID"] == "Asia/Ho_Chi_Minh"
    assert start.isoformat() == "2027-06-30T00:00:00+07:00"
    assert start.astimezone(dt.UTC) == dt.datetime(2027, 6, 29, 17, tzinfo=dt.UTC)
    cutoff = events[f"{base}.chot-so-lieu@baocao"]
    assert cutoff.decoded("DTSTART") == dt.date(2027, 6, 14)
    assert "từ 15/12/2026 đến hết 14/06/2027" in str(cutoff["DESCRIPTION"])
    calendar = icalendar.Calendar.from_ical(response.content)
    assert [str(z["TZID"]) for z in calendar.walk("VTIMEZONE")] == ["Asia/Ho_Chi_Minh"]

    # A second library imports it without errors and places the lock at the same instant.
    imported = ics.Calendar(response.text)
    assert len(imported.events) == len(events)
    by_uid = {e.uid: e for e in imported.events}
    assert by_uid[f"{base}.khoa-so@baocao"].begin == start
    assert by_uid[f"{base}.han-nop@baocao"].name == "Hạn nộp: Báo cáo 6 tháng năm 2027"


async def test_uids_stay_and_an_extension_moves_the_due_day(http: httpx.AsyncClient) -> None:
    path = f"/api/v1/units/{OTHER}/calendar.ics"
    first = await http.get(path, params={"token": feed_token(OTHER)})
    again = await http.get(path, params={"token": feed_token(OTHER)})

    assert first.status_code == again.status_code == 200
    assert events_by_uid(first.content).keys() == events_by_uid(again.content).keys()
    due = events_by_uid(first.content)[f"{SIX_MONTHS}.{OTHER}.han-nop@baocao"]
    assert str(due["SUMMARY"]) == "Hạn nộp (đã gia hạn): Báo cáo 6 tháng năm 2027"
    assert due.decoded("DTSTART") == dt.date(2027, 6, 19)
    lock = events_by_uid(first.content)[f"{SIX_MONTHS}.{OTHER}.khoa-so@baocao"]
    assert lock.decoded("DTSTART").isoformat() == "2027-07-05T00:00:00+07:00"


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("missing", 401, "invalid_feed_token"),
        ("forged", 401, "invalid_feed_token"),
        ("expired", 401, "invalid_feed_token"),
        ("session token", 401, "invalid_feed_token"),
        ("another unit's", 404, "not_found"),
    ],
)
async def test_a_feed_needs_the_units_own_valid_feed_token(
    http: httpx.AsyncClient, tmp_path: Path, case: str, status: int, code: str
) -> None:
    other_private, other_public = tmp_path / "k.pem", tmp_path / "k.pub.pem"
    write_key_pair(other_private, other_public)
    tokens = {
        "missing": "",
        "forged": feed_token(key=other_private),
        "expired": feed_token(now=NOW - dt.timedelta(days=400)),
        "session token": token(Role.OFFICER, UNIT),
        "another unit's": feed_token(OTHER),
    }

    response = await http.get(f"/api/v1/units/{UNIT}/calendar.ics", params={"token": tokens[case]})

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.json()["message"] in {
        "Liên kết lịch không hợp lệ hoặc đã hết hạn; vui lòng lấy liên kết mới trên trang "
        "của đơn vị.",
        "Không tìm thấy lịch của đơn vị này.",
    }
    assert "BEGIN:VCALENDAR" not in response.text


async def test_a_feed_token_signs_nobody_in(http: httpx.AsyncClient) -> None:
    response = await http.get(
        "/api/v1/periods", headers={"Authorization": f"Bearer {feed_token()}"}
    )
    assert response.status_code == 401
    verifier = TokenVerifier(load_public_key(key_files()[1]))
    with pytest.raises(Exception, match=r"audience|role"):
        verifier.principal(feed_token(), NOW, via_cookie=False)


class _Collection:
    def __init__(self, kept: list[Document]) -> None:
        self.kept = kept

    async def insert_one(self, entry: Document) -> None:
        self.kept.append(entry)


class _Database:
    """What the audit trail writes to: every month's collection into one list."""

    def __init__(self) -> None:
        self.kept: list[Document] = []

    def __getitem__(self, name: str) -> _Collection:
        return _Collection(self.kept)


@pytest.fixture
def audited() -> _Database:
    return _Database()


@pytest.fixture
async def submissions(audited: _Database) -> AsyncIterator[httpx.AsyncClient]:
    """The submissions route that issues feed links, with what its wiring gives it."""
    private, public = key_files()
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(calendar_api.router)
    clock = FixedClock(NOW)
    app.state.authenticator = TokenAuthenticator(TokenVerifier(load_public_key(public)), clock.now)
    app.state.calendar_links = calendar_api.CalendarLinks(
        load_private_key(private), "https://lich.example/", Catalog({SEED.id: SEED}), clock
    )
    app.state.audit = AuditTrail(audited, clock)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://submissions"
    ) as client:
        yield client


async def test_an_officer_gets_their_own_units_link_and_it_opens_the_feed(
    submissions: httpx.AsyncClient, http: httpx.AsyncClient, audited: _Database
) -> None:
    path = f"/api/v1/units/{UNIT}/calendar-token"
    issued = await submissions.post(path, headers=bearer(Role.OFFICER, UNIT))
    other = await submissions.post(path, headers=bearer(Role.OFFICER, OTHER))
    office = await submissions.post(path, headers=bearer(Role.OFFICE, "phong-vhtt"))
    reader = await submissions.post(path, headers=bearer(Role.READER))
    unknown = await submissions.post(
        "/api/v1/units/xa-khong-co/calendar-token", headers=bearer(Role.ADMIN)
    )

    assert issued.status_code == 200, issued.text
    link = issued.json()
    assert link["url"].startswith(f"https://lich.example/api/v1/units/{UNIT}/calendar.ics?token=")
    assert dt.datetime.fromisoformat(link["expires_at"]) > NOW + dt.timedelta(days=365)
    feed = await http.get(link["url"].removeprefix("https://lich.example"))
    assert feed.status_code == 200 and feed.text.startswith("BEGIN:VCALENDAR")
    assert (other.status_code, other.json()["code"]) == (404, "not_found")
    # The same answer as a unit that does not exist; only the audit trail tells them apart.
    assert other.json() == unknown.json()
    assert [(e["action"], e["actor_unit"], e["unit_id"]) for e in audited.kept] == [
        ("denied", OTHER, UNIT)
    ]
    assert office.status_code == 200
    assert (reader.status_code, reader.json()["code"]) == (403, "forbidden")
    assert unknown.status_code == 404
