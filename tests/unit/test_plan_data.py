"""The hand-written plan files load, validate and say what the source text says."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.plan import Plan
from contracts.plan.loading import PlanFileError, load
from services.common.periods import Period, periods_of

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
SECOND = ROOT / "tests" / "fixtures" / "plans" / "kh-chuyen-doi-so-phuong-an.yaml"

COMMUNES = {
    "xa-bo-y",
    "xa-dak-ang",
    "xa-dak-duc",
    "xa-dak-kan",
    "xa-dak-nong",
    "xa-dak-xu",
    "xa-sa-loong",
}


def _raw(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict)
    return data


def _strings(node: Any) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(k) + _strings(v)]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return []


@pytest.fixture(scope="module")
def seed() -> Plan:
    return load(SEED)


@pytest.fixture(scope="module")
def second() -> Plan:
    return load(SECOND)


@pytest.mark.unit
def test_seed_identity(seed: Plan) -> None:
    assert seed.id == "kh-nq35-ngoc-hoi"
    assert seed.issuer == "Ủy ban nhân dân huyện Ngọc Hồi"
    assert seed.number is None
    assert seed.issued_on is None
    assert seed.effective_from == dt.date(2019, 12, 1)
    assert seed.format == 2  # whatever format the file is written in
    assert seed.upward_recipient == "Ủy ban nhân dân tỉnh Kon Tum"
    assert seed.signer is not None
    assert seed.signer.name == "Mai Văn Hữu"
    assert seed.signer.authority == "TM. ỦY BAN NHÂN DÂN\nKT. CHỦ TỊCH"
    numbers = {b.number for b in seed.implements}
    expected = {"35-NQ/TW", "14-KH/TW", "102-KH/TU", "3006/KH-UBND", "131-KH/HU", "09/2017/NĐ-CP"}
    assert expected <= numbers
    assert seed.recipients[-1] == "Lưu: VT, TH."


@pytest.mark.unit
def test_seed_has_communes_town_police(seed: Plan) -> None:
    kinds = {u.id: u.kind for u in seed.units}
    assert {i for i, k in kinds.items() if k == "commune"} == COMMUNES
    assert kinds["thi-tran-plei-kan"] == "town"
    assert kinds["cong-an-huyen"] == "police"
    plei_kan = seed.unit("thi-tran-plei-kan")
    assert plei_kan is not None
    assert "Plei Kần" in plei_kan.name


@pytest.mark.unit
def test_seed_consolidating_unit_is_phong_vhtt(seed: Plan) -> None:
    unit = seed.unit(seed.consolidating_unit_id)
    assert unit is not None
    assert unit.name == "Phòng Văn hóa và Thông tin"
    assert unit.kind == "specialised_office"


@pytest.mark.unit
def test_seed_sections(seed: Plan) -> None:
    sections = [t.section for t in seed.tasks]
    assert {f"II.{i}" for i in range(1, 9)} <= set(sections)
    assert sections.count("II.1") == 4
    assert sections.count("II.3") == 2
    assert {"III.1", "III.2"} <= set(sections)
    assert all(len(t.title) < 80 for t in seed.tasks)


@pytest.mark.unit
@pytest.mark.parametrize("section", ["II.2", "II.7", "II.8"])
def test_seed_de_nghi_sections_are_requested(seed: Plan, section: str) -> None:
    tasks = [t for t in seed.tasks if t.section == section]
    assert tasks
    for task in tasks:
        # Through the expanded assignments: a group's mode is its units' mode.
        assignments = seed.assignments(task.id)
        assert assignments, task.id
        assert all(a.mode == "requested" for a in assignments), task.id


@pytest.mark.unit
def test_seed_ii_1_goes_to_offices_town_and_communes(seed: Plan) -> None:
    """II.1's heading: "Các phòng, ban, ngành, Ủy ban nhân dân các xã, thị trấn và các đơn vị
    liên quan", assigned as lead, and nobody the plan can only ask (đề nghị)."""
    for task in (t for t in seed.tasks if t.section == "II.1"):
        assignments = seed.assignments(task.id)
        units = [a.unit_id for a in assignments]
        assert len(units) == len(set(units)) == 24, task.id
        assert COMMUNES | {"thi-tran-plei-kan", "cong-an-huyen", "phong-vhtt"} <= set(units)
        assert "ban-tuyen-giao-huyen-uy" not in units
        assert all(a.mode == "assigned" and a.role == "lead" for a in assignments)


@pytest.mark.unit
def test_seed_communes_and_offices_report(seed: Plan) -> None:
    reporting = {u.id for u in seed.reporting_units()}
    assert COMMUNES | {"thi-tran-plei-kan", "cong-an-huyen", "phong-vhtt"} <= reporting
    assert "ubnd-huyen" not in reporting


@pytest.mark.unit
@pytest.mark.parametrize("path", [SEED, SECOND], ids=["seed", "second"])
def test_every_reporting_unit_has_an_email_contact(path: Path) -> None:
    plan = load(path)
    for unit in plan.reporting_units():
        assert any(c.email for c in unit.contacts), unit.id


@pytest.mark.unit
@pytest.mark.parametrize("path", [SEED, SECOND], ids=["seed", "second"])
def test_contact_emails_are_placeholders(path: Path) -> None:
    plan = load(path)
    emails = [c.email for u in plan.units for c in u.contacts if c.email]
    assert emails
    assert all(e.endswith(".example") for e in emails), emails


@pytest.mark.unit
@pytest.mark.parametrize("path", [SEED, SECOND], ids=["seed", "second"])
def test_all_text_is_nfc(path: Path) -> None:
    assert unicodedata.is_normalized("NFC", path.read_text(encoding="utf-8"))
    for s in _strings(_raw(path)):
        assert unicodedata.is_normalized("NFC", s), s


def _window(period: Period, plan: Plan) -> tuple[dt.date, dt.date, dt.date]:
    """(data_from, data_to, local due day) of the period, as the services compute it."""
    return period.data_from, period.data_to, period.due_at.astimezone(plan.tz).date()


def _periods_about(plan: Plan, year: int) -> list[Period]:
    return [p for p in periods_of(plan, year, year + 1) if p.year == year]


@pytest.mark.unit
def test_second_plan_is_quarterly(second: Plan) -> None:
    assert second.id == "kh-chuyen-doi-so-an-binh"
    # Four quarterly periods a year, whether written as four fixed-date kinds (format 1) or
    # as one quarterly rule (format 2).
    assert len(_periods_about(second, 2027)) == 4
    assert {u.kind for u in second.units if u.parent_id} >= {"ward", "specialised_office"}


@pytest.mark.unit
def test_second_plan_quarters_tile_the_year(second: Plan) -> None:
    windows = [_window(p, second) for p in _periods_about(second, 2027)]
    assert windows[0][0] == dt.date(2026, 12, 15)
    assert windows[-1][1] == dt.date(2027, 12, 14)
    for (_, end, _), (start, _, _) in itertools.pairwise(windows):
        assert start == end + dt.timedelta(days=1)
    assert [w[2] for w in windows] == [
        dt.date(2027, 4, 10),
        dt.date(2027, 7, 10),
        dt.date(2027, 10, 10),
        dt.date(2028, 1, 10),
    ]


@pytest.mark.unit
def test_seed_schedule_windows(seed: Plan) -> None:
    periods = {p.kind.code: p for p in _periods_about(seed, 2020)}
    assert set(periods) == {"6-thang", "hang-nam"}
    start = dt.date(2019, 12, 15)
    assert _window(periods["6-thang"], seed) == (start, dt.date(2020, 6, 14), dt.date(2020, 6, 15))
    # The annual report is due before 20/11: its data window ends the day before the 15th of
    # the month it is due in, so the figures are final when it is due (no cut-off after it).
    assert _window(periods["hang-nam"], seed) == (
        start,
        dt.date(2020, 11, 14),
        dt.date(2020, 11, 20),
    )
    for period in periods.values():
        assert period.cutoff_at <= period.due_at


# --- negative cases: loading refuses bad hand-written data, saying where --------------------


@pytest.fixture
def minimal() -> dict[str, Any]:
    return copy.deepcopy(_raw(SECOND))


def _problems(tmp_path: Path, raw: dict[str, Any]) -> list[tuple[str, str]]:
    """(path, message) of every problem loading ``raw`` from a file reports; [] if it loads."""
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    try:
        load(path)
    except PlanFileError as error:
        problems = error.problems
    else:
        return []
    assert all(p.file == str(path) and p.line for p in problems), problems
    return [(p.path, p.message) for p in problems]


@pytest.mark.unit
def test_rejects_task_assigned_to_unknown_unit(minimal: dict[str, Any], tmp_path: Path) -> None:
    minimal["tasks"][0]["assignments"].append({"unit_id": "phuong-khong-ton-tai"})
    where = f"tasks.0.assignments.{len(minimal['tasks'][0]['assignments']) - 1}"
    (problem,) = _problems(tmp_path, minimal)
    assert problem[0] == where
    assert "phuong-khong-ton-tai" in problem[1]
    assert "không có" in problem[1]


@pytest.mark.unit
def test_rejects_duplicate_unit_id(minimal: dict[str, Any], tmp_path: Path) -> None:
    minimal["units"].append(copy.deepcopy(minimal["units"][-1]))
    (problem,) = _problems(tmp_path, minimal)
    assert problem[0] == f"units.{len(minimal['units']) - 1}"
    assert "bị trùng" in problem[1]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("where", "path"),
    [("plan", "ghi_chu"), ("unit", "units.0.ghi_chu"), ("task", "tasks.0.ghi_chu")],
)
def test_rejects_unknown_field(
    minimal: dict[str, Any], tmp_path: Path, where: str, path: str
) -> None:
    target = {"plan": minimal, "unit": minimal["units"][0], "task": minimal["tasks"][0]}[where]
    target["ghi_chu"] = "trường không có trong mô hình"
    (problem,) = _problems(tmp_path, minimal)
    assert problem[0] == path
    assert "gõ nhầm" in problem[1]


@pytest.mark.unit
def test_rejects_bad_timezone(minimal: dict[str, Any], tmp_path: Path) -> None:
    minimal["timezone"] = "Asia/Ngoc_Hoi"
    (problem,) = _problems(tmp_path, minimal)
    assert problem == ("timezone", "múi giờ “Asia/Ngoc_Hoi” không tồn tại")


@pytest.mark.unit
def test_minimal_copy_is_valid(minimal: dict[str, Any], tmp_path: Path) -> None:
    """Guards the negative tests: they fail for their one change, not for the fixture."""
    assert _problems(tmp_path, minimal) == []
