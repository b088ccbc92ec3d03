"""The consolidation rules: punctuality from the first filing, content from the latest."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import random
import uuid

import pytest

from contracts.events import IndicatorValue, ReportConsolidatedPayload, TaskReport
from services.common.periods import find_period
from services.consolidate.domain import (
    PeriodFold,
    SubmissionRow,
    consolidate,
    content_hash,
    report_id_for_amendment,
    report_id_for_closing,
    report_id_for_request,
)
from tests.support import plans

pytestmark = pytest.mark.unit

PLAN = plans.make_plan(
    plan_id="kh-thu-nghiem",
    consolidating_unit_id="phong-vhtt",
    units=[
        plans.unit("ubnd-huyen", "UBND huyện", "peoples_committee", reports=False),
        plans.unit("phong-vhtt", "Phòng Văn hóa và Thông tin", "specialised_office"),
        plans.unit("cong-an", "Công an huyện", "police"),
        plans.unit("xa-a", "UBND xã A", "commune"),
        plans.unit("xa-b", "UBND xã B", "commune"),
    ],
    indicators=[
        plans.indicator("so-buoi", "Số buổi tuyên truyền", "buổi"),
        plans.indicator("so-tin-bai", "Số tin, bài", "tin/bài"),
        plans.indicator("so-cuoc-kiem-tra", "Số cuộc kiểm tra", "cuộc"),
    ],
    tasks=[
        plans.task(
            "tuyen-truyen",
            "II.1",
            "Tuyên truyền",
            ["phong-vhtt", "xa-a", "xa-b"],
            indicator_codes=["so-buoi", "so-tin-bai"],
        ),
        plans.task(
            "kiem-tra",
            "II.2",
            "Kiểm tra",
            ["cong-an", "phong-vhtt"],
            cooperating=["phong-vhtt"],
            indicator_codes=["so-cuoc-kiem-tra"],
        ),
    ],
)
PERIOD = find_period(PLAN, "kh-thu-nghiem.2026.6-thang")
assert PERIOD is not None
DUE = PERIOD.due_at  # 2026-06-14T17:00Z (midnight 15/6 in Asia/Ho_Chi_Minh)
NOW = DUE + dt.timedelta(days=16)


def task(task_id: str, results: str, **indicators: float) -> TaskReport:
    return TaskReport(
        task_id=task_id,
        status="in_progress",
        results=results,
        indicators=[
            IndicatorValue(code=c.replace("_", "-"), value=v) for c, v in indicators.items()
        ],
    )


def row(unit_id: str, revision: int, received_at: dt.datetime, *tasks: TaskReport) -> SubmissionRow:
    return SubmissionRow(
        submission_id=f"{unit_id}-r{revision}",
        receipt_no=f"BC-{unit_id}-{revision}",
        unit_id=unit_id,
        revision=revision,
        received_at=received_at,
        tasks=tasks,
    )


SUBMISSIONS = [
    # phong-vhtt: on time, content of the late correction wins
    row(
        "phong-vhtt",
        1,
        DUE - dt.timedelta(days=2),
        task("tuyen-truyen", "bản đầu", so_buoi=1, so_tin_bai=100),
        task("kiem-tra", "phối hợp lần đầu", so_cuoc_kiem_tra=9),
    ),
    row(
        "phong-vhtt",
        2,
        DUE + dt.timedelta(days=3),
        task("tuyen-truyen", "bản đính chính", so_buoi=4, so_tin_bai=10),
    ),
    # cong-an: late
    row(
        "cong-an",
        1,
        DUE + dt.timedelta(hours=1),
        task("kiem-tra", "Đã kiểm tra 2 cuộc", so_cuoc_kiem_tra=2),
    ),
    # xa-a: on time, by one second
    row(
        "xa-a",
        1,
        DUE - dt.timedelta(seconds=1),
        task("tuyen-truyen", "Tổ chức 3 buổi", so_buoi=3, so_tin_bai=5.5),
    ),
    # xa-b: missing. ubnd-huyen does not report; a stranger is ignored.
    row(
        "don-vi-la",
        1,
        DUE - dt.timedelta(days=1),
        task("tuyen-truyen", "không thuộc kế hoạch", so_buoi=1000),
    ),
]


def run(submissions: list[SubmissionRow] = SUBMISSIONS) -> ReportConsolidatedPayload:
    assert PERIOD is not None
    return consolidate(
        PLAN, PERIOD, submissions, now=NOW, trigger="period_closed", version=2, report_id="r-1"
    )


def test_each_expected_unit_has_a_status_in_plan_order() -> None:
    report = run()
    assert [(u.unit_id, u.status) for u in report.units] == [
        ("phong-vhtt", "on_time"),
        ("cong-an", "late"),
        ("xa-a", "on_time"),
        ("xa-b", "missing"),
    ]


def test_a_late_correction_keeps_the_first_filing_on_time_and_supersedes_its_content() -> None:
    unit = run().units[0]
    assert unit.status == "on_time"
    assert (unit.submission_id, unit.receipt_no, unit.revision) == (
        "phong-vhtt-r2",
        "BC-phong-vhtt-2",
        2,
    )
    assert unit.first_received_at == DUE - dt.timedelta(days=2)
    assert unit.last_received_at == DUE + dt.timedelta(days=3)


def test_revisions_arriving_out_of_order_change_nothing() -> None:
    assert run(list(reversed(SUBMISSIONS))) == run()


def test_a_missing_unit_carries_no_submission() -> None:
    missing = run().units[3]
    assert missing.submission_id is None
    assert missing.first_received_at is None


def test_counts_add_up() -> None:
    report = run()
    assert (report.expected, report.received, report.on_time, report.late, report.missing) == (
        4,
        3,
        2,
        1,
        1,
    )
    assert report.received == report.on_time + report.late
    assert report.expected == report.received + report.missing


def test_indicator_totals_sum_the_latest_revisions_in_plan_order() -> None:
    totals = [
        (t.code, t.name, t.unit_of_measure, t.total, t.reporting_units)
        for t in run().indicator_totals
    ]
    assert totals == [
        ("so-buoi", "Số buổi tuyên truyền", "buổi", 4 + 3, 2),
        ("so-tin-bai", "Số tin, bài", "tin/bài", 10 + 5.5, 2),
        # phong-vhtt's 9 was in the superseded revision
        ("so-cuoc-kiem-tra", "Số cuộc kiểm tra", "cuộc", 2, 1),
    ]


def test_a_format_1_plan_sums_as_before_and_says_so_in_the_new_fields() -> None:
    """Format 1 indicators load as numbers summed: ``value`` is ``total``, per unit and kind."""
    rows = {t.code: t for t in run().indicator_totals}
    buoi = rows["so-buoi"]

    assert [(t.type, t.aggregation, t.value) for t in rows.values()] == [
        ("number", "sum", t.total) for t in rows.values()
    ]
    assert [(v.unit_id, v.unit_kind, v.task_id, v.value) for v in buoi.values] == [
        ("phong-vhtt", "specialised_office", "tuyen-truyen", 4),
        ("xa-a", "commune", "tuyen-truyen", 3),
    ]
    assert [(k.kind, k.label, k.value, k.reporting_units) for k in buoi.by_kind] == [
        ("specialised_office", "Phòng chuyên môn", 4, 1),
        ("commune", "UBND xã", 3, 1),
    ]
    assert all(v.weight is None and v.flag is None and v.text is None for v in buoi.values)
    assert buoi.without_weight == 0


def test_one_unit_reporting_an_indicator_under_two_tasks_counts_both() -> None:
    both = run(
        [
            row(
                "phong-vhtt",
                1,
                DUE,
                task("tuyen-truyen", "a", so_buoi=2),
                task("kiem-tra", "b", so_buoi=5),
            )
        ]
    )
    (buoi,) = both.indicator_totals
    assert (buoi.total, buoi.reporting_units) == (7, 1)
    assert [v.task_id for v in buoi.values] == ["tuyen-truyen", "kiem-tra"]


def test_indicators_outside_the_plan_are_left_out() -> None:
    report = run([row("xa-b", 1, DUE, task("tuyen-truyen", "x", so_buoi=1, la_lung=7))])
    assert [t.code for t in report.indicator_totals] == ["so-buoi"]


def test_task_entries_come_from_latest_revisions_per_plan_task() -> None:
    tasks = run().tasks
    assert [(t.task_id, t.section, t.title) for t in tasks] == [
        ("tuyen-truyen", "II.1", "Tuyên truyền"),
        ("kiem-tra", "II.2", "Kiểm tra"),
    ]
    assert [(e.unit_id, e.results) for e in tasks[0].entries] == [
        ("phong-vhtt", "bản đính chính"),
        ("xa-a", "Tổ chức 3 buổi"),
    ]
    assert [(e.unit_id, e.results) for e in tasks[1].entries] == [("cong-an", "Đã kiểm tra 2 cuộc")]


def test_nothing_received_still_lists_every_unit_and_task() -> None:
    report = run([])
    assert (report.expected, report.received, report.missing) == (4, 0, 4)
    assert report.indicator_totals == []
    assert [len(t.entries) for t in report.tasks] == [0, 0]


def test_period_fields_and_no_document_yet() -> None:
    report = run()
    assert (report.report_id, report.version, report.trigger) == ("r-1", 2, "period_closed")
    assert (report.plan_id, report.period_id, report.report_kind, report.year) == (
        "kh-thu-nghiem",
        "kh-thu-nghiem.2026.6-thang",
        "6-thang",
        2026,
    )
    assert report.title == "Báo cáo 6 tháng năm 2026"
    assert report.due_at == dt.datetime(2026, 6, 14, 17, tzinfo=dt.UTC)
    assert report.consolidated_at == NOW
    assert report.document is None


def test_report_ids_are_deterministic_per_cause() -> None:
    event_id = uuid.uuid4()
    assert report_id_for_closing(event_id) == report_id_for_closing(event_id)
    assert report_id_for_closing(event_id) != report_id_for_closing(uuid.uuid4())
    assert report_id_for_request("p.2026.a", "k") == report_id_for_request("p.2026.a", "k")
    assert report_id_for_request("p.2026.a", "k") != report_id_for_request("p.2026.b", "k")
    assert report_id_for_amendment("s-1") == report_id_for_amendment("s-1")
    assert report_id_for_amendment("s-1") != report_id_for_amendment("s-2")


# --- content_hash: whether two versions say the same thing ----------------------------------


def test_the_content_hash_ignores_identity_version_trigger_and_time() -> None:
    assert PERIOD is not None
    other = consolidate(
        PLAN,
        PERIOD,
        list(reversed(SUBMISSIONS)),
        now=NOW + dt.timedelta(days=3),
        trigger="requested",
        version=7,
        report_id="r-2",
    )
    marked = run().model_copy(update={"supersedes": "r-0", "content_hash": "stale"})

    assert content_hash(other) == content_hash(run())
    assert content_hash(marked) == content_hash(run())


def test_the_content_hash_changes_when_a_units_results_change() -> None:
    changed = [
        *SUBMISSIONS,
        row(
            "xa-a",
            2,
            DUE + dt.timedelta(days=1),
            task("tuyen-truyen", "Tổ chức 3 buổi, bổ sung 1 tin", so_buoi=3, so_tin_bai=5.5),
        ),
    ]
    another_value = [
        *SUBMISSIONS,
        row(
            "xa-a",
            2,
            DUE + dt.timedelta(days=1),
            task("tuyen-truyen", "Tổ chức 3 buổi", so_buoi=4, so_tin_bai=5.5),
        ),
    ]

    assert content_hash(run(changed)) != content_hash(run())
    assert content_hash(run(another_value)) != content_hash(run())
    assert content_hash(run(SUBMISSIONS[:-2])) != content_hash(run())  # xa-a now missing


# --- the fold the handlers stream a period through ------------------------------------------


def folded(rows: list[SubmissionRow]) -> PeriodFold:
    fold = PeriodFold(PLAN)
    for r in rows:
        fold.add(r)
    return fold


@pytest.mark.parametrize("seed", range(5))
def test_rows_folded_in_any_order_give_the_same_report(seed: int) -> None:
    rows = list(SUBMISSIONS)
    random.Random(seed).shuffle(rows)
    expected = consolidate(
        PLAN, PERIOD, SUBMISSIONS, now=NOW, trigger="period_closed", version=1, report_id="r"
    )

    report = folded(rows).report(PERIOD, now=NOW, trigger="period_closed", version=1, report_id="r")

    assert report == expected
    assert content_hash(report) == content_hash(expected)


def test_of_two_rows_with_the_same_revision_and_time_the_first_to_arrive_stays() -> None:
    first = row("xa-a", 1, DUE, task("tuyen-truyen", "đến trước", so_buoi=1))
    again = dataclasses.replace(first, submission_id="xa-a-r1-bis", tasks=())

    report = folded([first, again]).report(
        PERIOD, now=NOW, trigger="requested", version=1, report_id="r"
    )

    assert report.units[2].submission_id == "xa-a-r1"
    assert [e.results for e in report.tasks[0].entries] == ["đến trước"]


def test_the_first_filing_time_is_the_earliest_whatever_the_revision() -> None:
    rows = [
        row("xa-a", 2, DUE - dt.timedelta(days=1), task("tuyen-truyen", "sau")),
        row("xa-a", 1, DUE - dt.timedelta(days=2), task("tuyen-truyen", "trước")),
    ]

    (unit,) = [
        u
        for u in consolidate(
            PLAN, PERIOD, rows, now=NOW, trigger="requested", version=1, report_id="r"
        ).units
        if u.unit_id == "xa-a"
    ]

    assert unit.first_received_at == DUE - dt.timedelta(days=2)
    assert (unit.revision, unit.last_received_at) == (2, DUE - dt.timedelta(days=1))


def test_the_content_hash_is_the_sha256_of_the_canonical_json_of_the_content() -> None:
    """Hashed in pieces, it equals the hash of the whole dump (which versions stored before)."""
    report = run()
    many = report.model_copy(
        update={
            "units": report.units * 700,
            "indicator_totals": [
                t.model_copy(update={"values": t.values * 1_100}) for t in report.indicator_totals
            ],
            "tasks": [t.model_copy(update={"entries": t.entries * 1_300}) for t in report.tasks],
        }
    )
    exclude = {"report_id", "version", "trigger", "consolidated_at", "supersedes", "content_hash"}

    for payload in (report, many, run([])):
        whole = json.dumps(
            payload.model_dump(mode="json", exclude=exclude),
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )
        assert content_hash(payload) == hashlib.sha256(whole.encode()).hexdigest()
