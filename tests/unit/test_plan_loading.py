"""Loading a plan file: every mistake refused at load time with its file, line and field path
in Vietnamese; what the plan text does not say is not required; groups expand at load."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from contracts.plan import KIND_LABELS, Plan, UnitKind
from contracts.plan.__main__ import main, run
from contracts.plan.loading import PlanFileError, Problem, load, warnings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]

# A province-level plan after the 2025 two-tier reform: departments (Sở), a ward, a commune
# and a special zone report to the provincial People's Committee.
BASE = textwrap.dedent(
    """\
    format: 2
    id: kh-thu-tinh
    title: Kế hoạch chuyển đổi số của tỉnh Thử
    issuer: Ủy ban nhân dân tỉnh Thử
    issuer_place: Thử
    consolidating_unit_id: van-phong
    upward_recipient: Bộ Khoa học và Công nghệ
    units:
      - id: ubnd-tinh
        name: Ủy ban nhân dân tỉnh Thử
        kind: province
        reports: false
      - id: van-phong
        name: Văn phòng UBND tỉnh
        kind: department
        parent_id: ubnd-tinh
        contacts: [{name: Lê Văn An, email: vanphong@thu.example}]
      - id: so-khcn
        name: Sở Khoa học và Công nghệ
        kind: department
        parent_id: ubnd-tinh
        contacts: [{name: Trần Thị Bình, email: khcn@thu.example}]
      - id: phuong-mot
        name: UBND phường Một
        kind: ward
        parent_id: ubnd-tinh
        contacts: [{name: Phạm Văn Chung, email: phuongmot@thu.example}]
      - id: xa-hai
        name: UBND xã Hai
        kind: commune
        parent_id: ubnd-tinh
        contacts: [{name: Đỗ Thị Dung, email: xahai@thu.example}]
      - id: dac-khu-ba
        name: UBND đặc khu Ba
        kind: special_zone
        parent_id: ubnd-tinh
        contacts: [{name: Vũ Văn Em, email: dackhuba@thu.example}]
    groups:
      - id: cap-xa
        name: UBND các xã, phường, đặc khu
        kinds: [commune, ward, special_zone]
      - id: cac-so
        name: Các sở, ban, ngành
        kinds: [department]
    indicators:
      - code: so-tin-bai
        name: Số tin, bài tuyên truyền
        type: count
      - code: ty-le-ho-so
        name: Tỷ lệ hồ sơ trực tuyến toàn trình
        type: percentage
    tasks:
      - id: nv-tuyen-truyen
        section: I.1
        text: Tuyên truyền về chuyển đổi số.
        assignments:
          - {group_id: cap-xa}
          - {unit_id: so-khcn, role: cooperating}
        indicators:
          - {code: so-tin-bai}
          - {code: ty-le-ho-so, roles: [lead]}
    schedule:
      - code: quy
        title: Báo cáo quý
        rule: quarterly
        due_day: 15
        occurrences: [1, 2, 3]
        cutoff_day: 12
      - code: nam
        title: Báo cáo năm
        due_before: "12-15"
        data_from: "12-15"
        data_from_previous_year: true
        data_to: "12-12"
    """
)

VIETNAMESE = set("ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ")


def _vietnamese(message: str) -> bool:
    return any(c in VIETNAMESE for c in message.lower())


def _edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once"
    return text.replace(old, new)


def _line(text: str, needle: str, after: int = 0) -> int:
    """The 1-based line of the first line after line ``after`` that contains ``needle``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if number > after and needle in line:
            return number
    raise AssertionError(f"{needle!r} not in the text")


def _write(tmp_path: Path, text: str, name: str = "plan.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(path: Path) -> list[Problem]:
    with pytest.raises(PlanFileError) as caught:
        load(path)
    problems = caught.value.problems
    for problem in problems:
        assert problem.file == str(path)
        assert not problem.warning
        assert _vietnamese(problem.message), problem
    return problems


def _only(path: Path) -> Problem:
    (problem,) = _problems(path)
    return problem


def test_the_base_plan_loads(tmp_path: Path) -> None:
    """Guards the tests below: each fails for its one change, not for the base."""
    plan = load(_write(tmp_path, BASE))
    assert plan.id == "kh-thu-tinh"
    assert warnings(tmp_path / "plan.yaml", plan) == []


# --- hierarchy --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["province", "department", "ward", "commune", "special_zone"])
def test_every_level_of_the_two_tier_structure_has_a_kind(tmp_path: Path, kind: str) -> None:
    plan = load(_write(tmp_path, BASE))
    assert any(u.kind == kind for u in plan.units)


def test_the_three_tier_structure_loads_too(tmp_path: Path) -> None:
    text = _edit(BASE, "kind: province\n", "kind: district\n")
    text = _edit(text, "kind: special_zone", "kind: town")
    plan = load(_write(tmp_path, text))
    assert {u.kind for u in plan.units} >= {UnitKind.DISTRICT, UnitKind.TOWN}


def test_every_kind_has_a_vietnamese_label() -> None:
    assert set(KIND_LABELS) == set(UnitKind)
    assert all(_vietnamese(label) for label in KIND_LABELS.values())


def test_an_unknown_kind_is_named_with_its_line(tmp_path: Path) -> None:
    text = _edit(BASE, "kind: special_zone", "kind: dac_khu")
    problem = _only(_write(tmp_path, text))
    assert problem.path == "units.5.kind"
    assert problem.line == _line(text, "kind: dac_khu")
    assert "dac_khu" in problem.message
    assert "special_zone" in problem.message


# --- indicators -------------------------------------------------------------------------


def test_a_percentage_is_never_summed(tmp_path: Path) -> None:
    text = _edit(BASE, "    type: percentage\n", "    type: percentage\n    aggregation: sum\n")
    problem = _only(_write(tmp_path, text))
    assert problem.path == "indicators.1"
    assert problem.line == _line(text, "- code: ty-le-ho-so")
    assert "không bao giờ được cộng dồn" in problem.message


@pytest.mark.parametrize(
    ("bounds", "expected"),
    [("", (0.0, 100.0)), ("    minimum: -5\n    maximum: 250\n", (0.0, 100.0))],
    ids=["default", "beyond-0-100"],
)
def test_percentage_bounds_are_clipped_to_0_100(
    tmp_path: Path, bounds: str, expected: tuple[float, float]
) -> None:
    text = _edit(BASE, "    type: percentage\n", f"    type: percentage\n{bounds}")
    plan = load(_write(tmp_path, text))
    indicator = plan.indicator("ty-le-ho-so")
    assert indicator is not None
    assert indicator.bounds == expected


def test_a_minimum_above_the_maximum_is_refused(tmp_path: Path) -> None:
    text = _edit(BASE, "    type: count\n", "    type: count\n    minimum: 10\n    maximum: 5\n")
    problem = _only(_write(tmp_path, text))
    assert problem.path == "indicators.0"
    assert problem.line == _line(text, "- code: so-tin-bai")
    assert "lớn hơn" in problem.message


def test_an_indicator_needs_no_unit_of_measure(tmp_path: Path) -> None:
    plan = load(_write(tmp_path, BASE))
    assert all(i.unit_of_measure is None for i in plan.indicators)


def test_indicators_are_asked_by_role(tmp_path: Path) -> None:
    plan = load(_write(tmp_path, BASE))
    (task,) = plan.tasks
    assert [i.code for i in plan.indicators_for(task, "xa-hai")] == ["so-tin-bai", "ty-le-ho-so"]
    assert [i.code for i in plan.indicators_for(task, "so-khcn")] == ["so-tin-bai"]


# --- assignments and groups -------------------------------------------------------------


def test_a_unit_assigned_twice_to_a_task_is_refused(tmp_path: Path) -> None:
    twice = "      - {unit_id: so-khcn, role: cooperating}\n"
    text = _edit(BASE, twice, twice + "      - {unit_id: so-khcn, mode: requested}\n")
    problem = _only(_write(tmp_path, text))
    assert problem.path == "tasks.0.assignments.2"
    assert problem.line == _line(text, "{unit_id: so-khcn, mode: requested}")
    assert "so-khcn" in problem.message
    assert "tasks.0.assignments.1" in problem.message
    assert "trùng phân công" in problem.message


def test_a_unit_assigned_directly_and_through_its_group_is_refused(tmp_path: Path) -> None:
    last = "      - {unit_id: so-khcn, role: cooperating}\n"
    text = _edit(BASE, last, last + "      - {unit_id: phuong-mot, role: cooperating}\n")
    problem = _only(_write(tmp_path, text))
    assert problem.path == "tasks.0.assignments.2"
    assert problem.line == _line(text, "{unit_id: phuong-mot")
    assert "phuong-mot" in problem.message
    assert "tasks.0.assignments.0" in problem.message


def test_two_overlapping_groups_are_refused(tmp_path: Path) -> None:
    groups = "groups:\n"
    text = _edit(
        BASE,
        groups,
        groups + "  - {id: tinh, name: Toàn tỉnh, parent_id: ubnd-tinh}\n",
    )
    text = _edit(
        text,
        "      - {unit_id: so-khcn, role: cooperating}\n",
        "      - {group_id: tinh, role: cooperating}\n",
    )
    problems = _problems(_write(tmp_path, text))
    # Every unit of cap-xa is in tinh too: one problem per unit, on the second assignment.
    assert {p.path for p in problems} == {"tasks.0.assignments.1"}
    assert {p.line for p in problems} == {_line(text, "{group_id: tinh")}
    assert len(problems) == 3


def test_groups_by_kind_by_parent_and_by_list(tmp_path: Path) -> None:
    groups = "groups:\n"
    text = _edit(
        BASE,
        groups,
        groups
        + "  - {id: toan-tinh, name: Toàn tỉnh, parent_id: ubnd-tinh}\n"
        + "  - {id: danh-sach, name: Hai đơn vị, units: [xa-hai, van-phong]}\n"
        + "  - id: so-va-phuong\n"
        + "    name: Sở và phường thuộc tỉnh\n"
        + "    kinds: [department, ward]\n"
        + "    parent_id: ubnd-tinh\n",
    )
    plan = load(_write(tmp_path, text))
    assert plan.members("cap-xa") == ["phuong-mot", "xa-hai", "dac-khu-ba"]
    assert plan.members("cac-so") == ["van-phong", "so-khcn"]
    assert plan.members("toan-tinh") == [
        "van-phong",
        "so-khcn",
        "phuong-mot",
        "xa-hai",
        "dac-khu-ba",
    ]
    # A listed group keeps the plan's unit order, not the list's.
    assert plan.members("danh-sach") == ["van-phong", "xa-hai"]
    assert plan.members("so-va-phuong") == ["van-phong", "so-khcn", "phuong-mot"]


def test_a_unit_added_to_the_data_joins_every_assignment_of_its_group(tmp_path: Path) -> None:
    before = load(_write(tmp_path, BASE, "before.yaml"))
    new_commune = textwrap.indent(
        "- id: xa-moi\n"
        "  name: UBND xã Mới\n"
        "  kind: commune\n"
        "  parent_id: ubnd-tinh\n"
        "  contacts: [{name: Hồ Văn Giang, email: xamoi@thu.example}]\n",
        "  ",
    )
    after = load(_write(tmp_path, _edit(BASE, "groups:\n", new_commune + "groups:\n")))
    assert "xa-moi" not in {a.unit_id for a in before.assignments("nv-tuyen-truyen")}
    assigned = {a.unit_id: a for a in after.assignments("nv-tuyen-truyen")}
    assert assigned["xa-moi"].role == "lead"
    assert assigned["xa-moi"].mode == "assigned"
    assert [t.id for t in after.tasks_of("xa-moi")] == ["nv-tuyen-truyen"]
    assert "xa-moi" in {u.id for u in after.reporting_units()}


def test_a_group_must_select_something(tmp_path: Path) -> None:
    text = _edit(BASE, "    kinds: [department]\n", "")
    problem = _only(_write(tmp_path, text))
    assert problem.path == "groups.1"
    assert problem.line == _line(text, "- id: cac-so")


def test_unknown_references_are_each_named_with_their_path_and_line(tmp_path: Path) -> None:
    text = _edit(BASE, "{group_id: cap-xa}", "{group_id: cap-huyen}")
    text = _edit(text, "{unit_id: so-khcn, role: cooperating}", "{unit_id: so-tttt}")
    text = _edit(text, "{code: so-tin-bai}", "{code: so-tin-bai-viet}")
    text = _edit(text, "kinds: [department]", "units: [so-noi-vu]")
    text = _edit(text, "consolidating_unit_id: van-phong", "consolidating_unit_id: vp-ubnd")
    problems = {p.path: p for p in _problems(_write(tmp_path, text))}
    expected = {
        "tasks.0.assignments.0": ("cap-huyen", "{group_id: cap-huyen}"),
        "tasks.0.assignments.1": ("so-tttt", "{unit_id: so-tttt}"),
        "tasks.0.indicators.0": ("so-tin-bai-viet", "{code: so-tin-bai-viet}"),
        "groups.1.units.0": ("so-noi-vu", "units: [so-noi-vu]"),
        "consolidating_unit_id": ("vp-ubnd", "consolidating_unit_id: vp-ubnd"),
        # ... and the group it leaves empty.
        "groups.1": ("cac-so", "- id: cac-so"),
    }
    assert set(problems) == set(expected)
    for path, (name, needle) in expected.items():
        assert name in problems[path].message, path
        assert problems[path].line == _line(text, needle), path


def test_an_unknown_parent_is_named(tmp_path: Path) -> None:
    text = _edit(
        BASE,
        "name: UBND xã Hai\n    kind: commune\n    parent_id: ubnd-tinh",
        "name: UBND xã Hai\n    kind: commune\n    parent_id: ubnd-huyen",
    )
    problem = _only(_write(tmp_path, text))
    assert problem.path == "units.4.parent_id"
    assert problem.line == _line(text, "parent_id: ubnd-huyen")
    assert "ubnd-huyen" in problem.message


# --- the schedule -----------------------------------------------------------------------


@pytest.mark.parametrize("day", ["02-30", "04-31", "02-29", "06-31", "13-01"])
@pytest.mark.parametrize("field", ["due_before", "data_from", "data_to"])
def test_an_impossible_day_is_refused_at_load(tmp_path: Path, field: str, day: str) -> None:
    old = {"due_before": 'due_before: "12-15"', "data_from": 'data_from: "12-15"'}
    old["data_to"] = 'data_to: "12-12"'
    text = _edit(BASE, old[field], f'{field}: "{day}"')
    problem = _only(_write(tmp_path, text))
    assert problem.path == f"schedule.1.{field}"
    assert problem.line == _line(text, f'{field}: "{day}"')
    if day == "02-29":
        assert "năm nhuận" in problem.message
    elif day == "13-01":
        assert day in problem.message
    else:
        assert "không tồn tại" in problem.message


@pytest.mark.parametrize("day", [29, 30, 31])
@pytest.mark.parametrize("rule", ["monthly", "quarterly", "six_monthly"])
def test_a_due_day_missing_from_some_months_is_refused(tmp_path: Path, rule: str, day: int) -> None:
    text = _edit(BASE, "rule: quarterly\n    due_day: 15", f"rule: {rule}\n    due_day: {day}")
    text = _edit(text, "    occurrences: [1, 2, 3]\n", "")
    problem = _only(_write(tmp_path, text))
    assert problem.path == "schedule.0.due_day"
    assert problem.line == _line(text, f"due_day: {day}")
    assert "từ 1 đến 28" in problem.message


def test_a_monthly_report_with_a_cut_off_on_the_28th_loads(tmp_path: Path) -> None:
    """The day after a 28 February cut-off is 1 March, not 29 February."""
    text = _edit(
        BASE,
        "rule: quarterly\n    due_day: 15\n    occurrences: [1, 2, 3]\n    cutoff_day: 12",
        "rule: monthly\n    due_day: 5\n    due_month: following\n    cutoff_day: 28",
    )
    plan = load(_write(tmp_path, text))
    from contracts.plan.schedule import occurrences

    march = occurrences(plan.schedule[0], 2027)[2]
    assert (march.data_from.isoformat(), march.data_to.isoformat()) == ("2027-03-01", "2027-03-28")


ONCE = textwrap.indent(
    textwrap.dedent(
        """\
        - code: so-ket
          title: Báo cáo sơ kết
          rule: once
          due_on: 2027-06-30
          data_from_date: {start}
          data_to_date: {end}
        """
    ),
    "  ",
)


@pytest.mark.parametrize(
    ("start", "end", "says"),
    [
        ("2027-01-01", "2027-07-31", "phải trước hạn nộp"),
        ("2027-01-01", "2027-06-30", "phải trước hạn nộp"),
        ("2027-06-20", "2027-01-01", "bắt đầu sau khi kết thúc"),
    ],
    ids=["ends-after-due", "ends-on-due-day", "starts-after-end"],
)
def test_a_once_report_whose_data_window_is_out_of_order_is_refused(
    tmp_path: Path, start: str, end: str, says: str
) -> None:
    text = BASE + ONCE.format(start=start, end=end)
    problem = _only(_write(tmp_path, text))
    assert problem.path == "schedule.2"
    assert problem.line == _line(text, "- code: so-ket")
    assert says in problem.message


def test_a_once_report_loads(tmp_path: Path) -> None:
    plan = load(_write(tmp_path, BASE + ONCE.format(start="2027-01-01", end="2027-05-31")))
    assert plan.schedule[2].due_on is not None


def test_an_impossible_calendar_date_is_refused(tmp_path: Path) -> None:
    text = BASE + ONCE.format(start="2027-02-29", end="2027-05-31")
    problem = _only(_write(tmp_path, text))
    assert problem.path == "schedule.2.data_from_date"
    assert problem.line == _line(text, "data_from_date: 2027-02-29")


def test_a_yearly_window_ending_after_its_due_day_is_refused(tmp_path: Path) -> None:
    text = _edit(BASE, 'data_to: "12-12"', 'data_to: "12-20"')
    problem = _only(_write(tmp_path, text))
    assert problem.path == "schedule.1"
    assert problem.line == _line(text, "- code: nam")
    assert "20/12" in problem.message


def test_a_periodic_rule_needs_its_due_day(tmp_path: Path) -> None:
    text = _edit(BASE, "    due_day: 15\n", "")
    problem = _only(_write(tmp_path, text))
    assert problem.path == "schedule.0"
    assert "due_day" in problem.message


@pytest.mark.parametrize("occurrences", ["[1, 5]", "[2, 2]"])
def test_occurrences_must_exist_and_differ(tmp_path: Path, occurrences: str) -> None:
    text = _edit(BASE, "occurrences: [1, 2, 3]", f"occurrences: {occurrences}")
    problem = _only(_write(tmp_path, text))
    assert problem.path == "schedule.0"
    assert "occurrences" in problem.message


# --- only what the plan says is required ------------------------------------------------


def test_what_the_plan_text_does_not_say_is_not_required(tmp_path: Path) -> None:
    """No effective dates, no units of measure, no task title, no number or issue date."""
    plan = load(_write(tmp_path, BASE))
    assert plan.effective_from is None
    assert plan.effective_until is None
    assert plan.number is None
    assert plan.issued_on is None
    (task,) = plan.tasks
    assert task.title == "Tuyên truyền về chuyển đổi số."


def test_a_task_title_when_given_is_kept(tmp_path: Path) -> None:
    text = _edit(BASE, "    section: I.1\n", "    section: I.1\n    title: Tuyên truyền\n")
    (task,) = load(_write(tmp_path, text)).tasks
    assert task.title == "Tuyên truyền"


def test_a_reporting_unit_without_contacts_is_a_warning_not_an_error(tmp_path: Path) -> None:
    text = _edit(BASE, "    contacts: [{name: Đỗ Thị Dung, email: xahai@thu.example}]\n", "")
    path = _write(tmp_path, text)
    plan = load(path)
    (warning,) = warnings(path, plan)
    assert warning.warning
    assert warning.file == str(path)
    assert warning.path == "units.4"
    assert warning.line == _line(text, "- id: xa-hai")
    assert _vietnamese(warning.message)
    assert "UBND xã Hai" in warning.message


def test_a_unit_that_does_not_report_needs_no_contacts(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE)
    assert load(path).unit("ubnd-tinh") is not None
    assert warnings(path, load(path)) == []  # ubnd-tinh has none and reports: false


# --- the file as a whole ----------------------------------------------------------------


def test_a_yaml_syntax_error_reports_its_line(tmp_path: Path) -> None:
    text = _edit(BASE, "issuer_place: Thử\n", "issuer_place: Thử: Một\n")
    problem = _only(_write(tmp_path, text))
    assert problem.line == _line(text, "issuer_place: Thử: Một")
    assert problem.path == ""
    assert "cú pháp" in problem.message


def test_several_problems_are_reported_at_once(tmp_path: Path) -> None:
    text = _edit(BASE, "kind: special_zone", "kind: dac_khu")
    text = _edit(text, 'due_before: "12-15"', 'due_before: "02-30"')
    text = _edit(text, "    due_day: 15\n", "    due_day: 31\n")
    text = _edit(text, "    type: count\n", "    type: count\n    don_vi: tin\n")
    text = _edit(text, "issuer_place: Thử\n", "")
    problems = _problems(_write(tmp_path, text))
    assert {(p.path, p.line) for p in problems} == {
        ("units.5.kind", _line(text, "kind: dac_khu")),
        ("schedule.1.due_before", _line(text, 'due_before: "02-30"')),
        ("schedule.0.due_day", _line(text, "due_day: 31")),
        ("indicators.0.don_vi", _line(text, "don_vi: tin")),
        ("issuer_place", 1),
    }


def test_a_missing_file_is_one_problem(tmp_path: Path) -> None:
    problem = _only(tmp_path / "khong-co.yaml")
    assert problem.line is None
    assert "không đọc được" in problem.message


def test_a_format_1_file_of_the_wrong_shape_is_refused_not_crashed(tmp_path: Path) -> None:
    text = "id: kh-cu\nunits: mot-don-vi\nindicators: 5\ntasks: [nhiem-vu]\n"
    problems = {p.path: p for p in _problems(_write(tmp_path, text))}
    assert problems["units"].line == 2
    assert problems["indicators"].line == 3
    assert problems["tasks.0"].line == 4


def test_a_json_plan_loads_and_its_problems_carry_their_path(tmp_path: Path) -> None:
    import json

    import yaml

    raw = yaml.safe_load(BASE)
    assert isinstance(load(_write(tmp_path, json.dumps(raw), "plan.json")), Plan)
    raw["schedule"][1]["due_before"] = "04-31"
    problem = _only(_write(tmp_path, json.dumps(raw), "plan.json"))
    assert problem.path == "schedule.1.due_before"


# --- python -m contracts.plan check -----------------------------------------------------


def test_check_prints_every_problem_and_a_summary_and_fails_on_errors(tmp_path: Path) -> None:
    good = _write(tmp_path, BASE, "good.yaml")
    text = _edit(BASE, 'due_before: "12-15"', 'due_before: "04-31"')
    bad = _write(tmp_path, _edit(text, "{code: so-tin-bai}", "{code: so-tin-bai-viet}"), "bad.yaml")
    out = io.StringIO()
    assert run([good, bad], out=out) == 1
    lines = out.getvalue().splitlines()
    assert (
        lines[0]
        == f"{bad}:{_line(text, 'due_before')}: schedule.1.due_before: ngày 31/04 không tồn tại"
    )
    assert len(lines) == 2
    assert lines[-1].startswith("Đã kiểm tra 2 tệp kế hoạch: 1 lỗi, 0 cảnh báo")


def test_check_prints_warnings_but_passes(tmp_path: Path) -> None:
    text = _edit(BASE, "    contacts: [{name: Đỗ Thị Dung, email: xahai@thu.example}]\n", "")
    path = _write(tmp_path, text)
    out = io.StringIO()
    assert run([path], out=out) == 0
    first, summary = out.getvalue().splitlines()
    assert first.startswith(f"{path}:{_line(text, '- id: xa-hai')}: cảnh báo: units.4: ")
    assert "0 lỗi, 1 cảnh báo" in summary
    quiet = io.StringIO()
    assert run([path], quiet=True, out=quiet) == 0
    assert quiet.getvalue() == ""


def test_check_quiet_prints_errors_only(tmp_path: Path) -> None:
    text = _edit(BASE, "    contacts: [{name: Đỗ Thị Dung, email: xahai@thu.example}]\n", "")
    warned = _write(tmp_path, text, "warned.yaml")
    broken = _write(tmp_path, _edit(BASE, "kind: special_zone", "kind: dac_khu"), "broken.yaml")
    out = io.StringIO()
    assert run([warned, broken], quiet=True, out=out) == 1
    (line,) = out.getvalue().splitlines()
    assert line.startswith(f"{broken}:")


def test_check_needs_a_file() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check"])
    assert exited.value.code == 2


def test_check_runs_as_a_module_on_the_repository_plans() -> None:
    plans = sorted(str(p) for p in (ROOT / "data" / "plans").glob("*.yaml"))
    done = subprocess.run(
        [sys.executable, "-m", "contracts.plan", "check", *plans],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith(f"Đã kiểm tra {len(plans)} tệp kế hoạch: 0 lỗi")
