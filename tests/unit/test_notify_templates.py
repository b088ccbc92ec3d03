"""Golden files of every notice notify sends: subject, text and (for one notice) the HTML.

A template change shows here as a diff of the whole rendered message. To accept a change on
purpose: ``BAOCAO_UPDATE_GOLDEN=1 pytest tests/unit/test_notify_templates.py`` and read the
diff of ``tests/unit/golden/notify/`` before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from contracts.plan import Plan
from services.common.reference import Catalog
from services.notify.domain import html_of, messages_for
from services.notify.store import message_document, message_from
from tests.support.notices import CASES, PERIOD, PLAN_ID, PORTAL, SEED, consolidated_v1

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).with_name("golden") / "notify"


@pytest.fixture(scope="module")
def plan() -> Plan:
    loaded = Catalog.load([SEED]).plan(PLAN_ID)
    assert loaded is not None
    return loaded


def golden(name: str, rendered: str) -> None:
    path = GOLDEN / name
    if os.environ.get("BAOCAO_UPDATE_GOLDEN"):
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"no golden file {path}: run with BAOCAO_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_notice_renders_as_its_golden_file(case: str, plan: Plan) -> None:
    everything = messages_for(CASES[case], plan, PORTAL + "/", ("email", "sms"))
    messages = [m for m in everything if m.channel == "email"]
    texts = [m for m in everything if m.channel == "sms"]

    assert messages, f"{case}: nobody to tell"
    first = messages[0]
    assert "{{" not in first.text and "{%" not in first.text
    rendered = (
        f"Template: {first.template}\n"
        f"To: {', '.join(f'{m.recipient_name} <{m.recipient}>' for m in messages)}\n"
        f"Reply-To: {first.reply_to_name} <{first.reply_to}>\n"
        f"Subject: {first.subject}\n\n{first.text}"
        f"\n--- SMS to {', '.join(m.recipient for m in texts) or 'nobody'}\n"
        f"{texts[0].text if texts else ''}\n"
    )
    golden(f"{case}.txt", rendered)


def test_the_html_part_renders_as_its_golden_file(plan: Plan) -> None:
    [message] = messages_for(CASES["receipt"], plan, PORTAL)

    golden("receipt.html", html_of(message.subject, message.text))


def test_period_titles_keep_their_capitals(plan: Plan) -> None:
    for case, event in CASES.items():
        text = messages_for(event, plan, PORTAL)[0].text
        assert "báo cáo 6 tháng năm 2027" not in text, case
        assert "Báo cáo 6 tháng năm 2027" in text, case


def test_every_unit_notice_links_to_the_intake_page(plan: Plan) -> None:
    for case, event in CASES.items():
        if case.startswith(("consolidated", "summary")):  # to the office or the leadership
            continue
        text = messages_for(event, plan, PORTAL)[0].text
        assert f"{PORTAL}/periods/{PERIOD}/report" in text, case


@pytest.mark.parametrize("version", [1, 2])
def test_a_report_notice_caused_by_v1_reads_as_the_one_caused_by_v2(
    plan: Plan, version: int
) -> None:
    """notify reads v2; a notice still in its ledger from before v2 was caused by v1."""
    v2 = messages_for(CASES["consolidated" if version == 1 else "consolidated-v2"], plan, PORTAL)
    v1 = messages_for(consolidated_v1(version), plan, PORTAL)
    assert [(m.recipient, m.subject, m.text) for m in v1] == [
        (m.recipient, m.subject, m.text) for m in v2
    ]


@pytest.mark.parametrize("version", [1, 2])
def test_a_report_notice_reads_back_from_the_ledger_as_the_event_version_that_caused_it(
    plan: Plan, version: int
) -> None:
    cause = CASES["consolidated"] if version == 2 else consolidated_v1(1)
    message = messages_for(cause, plan, PORTAL)[0]
    document = message_document(message)
    assert document["cause_schema_version"] == version
    if version == 1:
        del document["cause_schema_version"]  # stored before the event had two versions
    again = message_from(document)
    assert again == message and type(again.cause) is type(cause)


def test_the_leaderships_copy_of_an_overdue_summary_renders_as_its_golden_file(plan: Plan) -> None:
    everything = messages_for(CASES["summary-overdue"], plan, PORTAL + "/", ("email", "sms"))
    leadership = [m for m in everything if m.unit_id == "ubnd-huyen"]

    assert leadership, "the overdue summary reaches the leadership"
    rendered = "".join(
        f"{m.channel} to {m.recipient_name} <{m.recipient}>\nSubject: {m.subject}\n\n{m.text}\n"
        for m in leadership
    )
    golden("summary-leadership.txt", rendered)
