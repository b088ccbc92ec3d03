"""Small decisions of the pages: where to go after signing in, dates as people type them,
file sizes as people read them, which files go with a report."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from services.submissions.models import SubmissionCreate
from services.submissions.pages.attachments import size_text
from services.submissions.pages.base import HOME, safe_next
from services.submissions.pages.review import BadDay, day
from services.submissions.report_form import Converted, validation_problems

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("asked", "goes"),
    [
        ("/periods/x/report", "/periods/x/report"),
        ("", HOME),
        (None, HOME),
        ("https://evil.example/", HOME),
        ("//evil.example/", HOME),
        ("/\\evil.example", HOME),
    ],
)
def test_after_signing_in_only_places_on_this_site(asked: str | None, goes: str) -> None:
    assert safe_next(asked) == goes


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("2027-07-20", dt.date(2027, 7, 20)),
        ("20/07/2027", dt.date(2027, 7, 20)),
        ("5/7/2027", dt.date(2027, 7, 5)),
        ("", None),
    ],
)
def test_a_day_from_a_date_picker_or_as_vietnamese_write_it(typed: str, meant: dt.date) -> None:
    assert day(typed) == meant


@pytest.mark.parametrize("typed", ["31/02/2027", "20-07-2027", "tomorrow", "2027-13-01"])
def test_a_day_that_is_not_one_is_refused(typed: str) -> None:
    with pytest.raises(BadDay):
        day(typed)


def test_sizes_read_as_people_count_them() -> None:
    assert [size_text(n) for n in (12, 820_000, 2_500_000, 20_000_000)] == [
        "1 KB",
        "820 KB",
        "2,5 MB",
        "20 MB",
    ]


def test_a_refused_attachment_id_lands_on_the_files() -> None:
    body = {
        "period_id": "p",
        "unit_id": "u",
        "tasks": [{"task_id": "t", "status": "completed", "results": "r"}],
        "attachments": ["x" * 65],
    }
    with pytest.raises(ValidationError) as refused:
        SubmissionCreate.model_validate(body)

    found = validation_problems(refused.value, Converted(body, []))
    assert list(found) == ["attach"]
