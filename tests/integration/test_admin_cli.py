"""The accounts command line (``python -m services.submissions.admin``) against the real FerretDB:
the first admin, a CSV import (all rows or none), and the demo accounts of ``make up``."""

from __future__ import annotations

import datetime as dt
import re
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.synchronous.database import Database

from services.common.auth import Role
from services.submissions.accounts import password_matches
from services.submissions.admin import main
from tests.conftest import Servers
from tests.support.submissions import SEED

pytestmark = pytest.mark.integration

Db = Database[dict[str, Any]]


@pytest.fixture
def accounts_db(servers: Servers, namespace: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Db]:
    """The submissions database the command writes to, under the test's namespace."""
    monkeypatch.setenv("BAOCAO_MONGO_URI", servers.mongo_uri)
    monkeypatch.setenv("BAOCAO_NAMESPACE", namespace)
    monkeypatch.setenv("BAOCAO_PLANS", str(SEED))
    client: MongoClient[dict[str, Any]] = MongoClient(servers.mongo_uri, tz_aware=True)
    try:
        yield client[f"{namespace}_baocao_submissions"]
    finally:
        client.close()


def passwords(listing: str) -> dict[str, str]:
    """username → password from the command's listing."""
    return dict(re.findall(r"^(\S+)\s+(\S+)\s+\(", listing, flags=re.MULTILINE))


def run(argv: list[str]) -> int:
    # The command runs its own event loop (``asyncio.run``), as from a shell; in a thread of its
    # own, so it leaves the test session's loop alone.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(main, argv).result()


def test_create_admin_prints_a_generated_password_that_signs_in(
    accounts_db: Db,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["create-admin", "--username", "QuanTri", "--name", "Nguyễn Văn A"]) == 0
    printed = passwords(capsys.readouterr().out)

    stored = accounts_db["accounts"].find_one({"_id": "quantri"})
    assert stored is not None
    assert stored["role"] == Role.ADMIN.value
    assert stored["password_hash"].startswith("$argon2id$")
    assert password_matches(stored["password_hash"], printed["quantri"])
    # Once only: the same username again is refused, and the first password still holds.
    assert run(["create-admin", "--username", "quantri", "--name", "Khác"]) == 1
    assert "đã có" in capsys.readouterr().err
    again = accounts_db["accounts"].find_one({"_id": "quantri"})
    assert again is not None and again["password_hash"] == stored["password_hash"]


def test_import_csv_creates_every_row_and_writes_every_password(
    accounts_db: Db,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    csv = tmp_path / "accounts.csv"
    csv.write_text(
        "username,name,role,unit_id,email\n"
        "canbo-bo-y,Cán bộ xã Bờ Y,officer,xa-bo-y,boy@example.vn\n"
        "tonghop,Phòng Văn hóa và Thông tin,office,phong-vhtt,\n"
        "captinh,Tỉnh,reader,,\n",
        encoding="utf-8",
    )
    out = tmp_path / "passwords.txt"

    assert run(["import-csv", str(csv), "--out", str(out)]) == 0

    assert "3 tài khoản" in capsys.readouterr().out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    written = passwords(out.read_text(encoding="utf-8"))
    assert set(written) == {"canbo-bo-y", "tonghop", "captinh"}
    for username, password in written.items():
        stored = accounts_db["accounts"].find_one({"_id": username})
        assert stored is not None
        assert password_matches(stored["password_hash"], password)
    officer = accounts_db["accounts"].find_one({"_id": "canbo-bo-y"})
    assert officer is not None
    assert (officer["role"], officer["unit_id"], officer["email"]) == (
        "officer",
        "xa-bo-y",
        "boy@example.vn",
    )


def test_import_csv_with_a_bad_row_creates_nothing_and_names_every_line(
    accounts_db: Db,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["create-admin", "--username", "quantri", "--name", "Quản trị"]) == 0
    capsys.readouterr()
    csv = tmp_path / "accounts.csv"
    csv.write_text(
        "username,name,role,unit_id,email\n"
        "canbo-bo-y,Cán bộ xã Bờ Y,officer,xa-bo-y,\n"  # 2: good
        "canbo-x,Cán bộ X,officer,xa-khong-co,\n"  # 3: unknown unit
        "canbo-bo-y,Lặp lại,officer,xa-bo-y,\n"  # 4: repeats line 2
        "quantri,Đã có,admin,,\n"  # 5: already an account
        "canbo-thieu\n"  # 6: missing columns
        "canbo-z,Cán bộ Z,truong-phong,,\n"  # 7: unknown role
        "canbo-w,Cán bộ W,officer,,\n",  # 8: an officer without a unit
        encoding="utf-8",
    )
    out = tmp_path / "passwords.txt"

    assert run(["import-csv", str(csv), "--out", str(out)]) == 1

    err = capsys.readouterr().err
    for line in (3, 4, 5, 6, 7, 8):
        assert f"{csv}:{line}: " in err, err
    assert f"{csv}:2: " not in err
    lines = [int(n) for n in re.findall(rf"{re.escape(str(csv))}:(\d+): ", err)]
    assert lines == sorted(lines)  # in the file's order, as one fixes them
    assert "trùng dòng 2" in err
    assert "chưa tạo tài khoản nào" in err
    assert not out.exists()
    assert sorted(d["_id"] for d in accounts_db["accounts"].find({})) == ["quantri"]


def test_import_csv_without_a_required_column_is_refused_at_its_header(
    accounts_db: Db,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    csv = tmp_path / "accounts.csv"
    csv.write_text("username,role\ncanbo,officer\n", encoding="utf-8")

    assert run(["import-csv", str(csv)]) == 1

    assert f"{csv}:1: thiếu cột name" in capsys.readouterr().err
    assert accounts_db["accounts"].count_documents({}) == 0


def test_demo_accounts_one_per_role_in_a_private_file_and_a_rerun_ends_the_old_ones(
    accounts_db: Db,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / ".stack" / "demo-accounts.txt"

    assert run(["demo", "--out", str(out)]) == 0

    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text(encoding="utf-8")
    assert capsys.readouterr().out == text
    stored = {d["_id"]: d for d in accounts_db["accounts"].find({})}
    by_role: dict[str, list[str]] = {}
    for doc in stored.values():
        by_role.setdefault(doc["role"], []).append(doc["_id"])
    assert {r: len(names) for r, names in by_role.items()} == {
        "admin": 1,
        "office": 1,
        "officer": 2,
        "reader": 1,
    }
    assert stored["tonghop"]["unit_id"] == "phong-vhtt"  # the seed plan's consolidating unit
    for username, password in passwords(text).items():
        assert password_matches(stored[username]["password_hash"], password)
    tokens = list(accounts_db["api_tokens"].find({}))
    assert len(tokens) == 2 and all(t["revoked_at"] is None for t in tokens)
    assert len(re.findall(r"^API token \S+: bct_", text, flags=re.MULTILINE)) == 2

    # Run again with the file gone (a rehearsal starting over): new passwords, and what the
    # old accounts signed in with (tokens, a browser session) no longer works.
    officer = next(n for n in by_role["officer"] if n.startswith("canbo-"))
    accounts_db["sessions"].insert_one(
        {"_id": "s-cu", "username": officer, "csrf": "x", "expires_at": dt.datetime.now(dt.UTC)}
    )
    out.unlink()
    assert run(["demo", "--out", str(out)]) == 0
    capsys.readouterr()

    old = {t["_id"] for t in tokens}
    after = {t["_id"]: t for t in accounts_db["api_tokens"].find({})}
    assert all(after[i]["revoked_at"] is not None for i in old)
    assert sum(1 for t in after.values() if t["revoked_at"] is None) == 2
    assert accounts_db["sessions"].count_documents({"username": officer}) == 0
    renewed = passwords(out.read_text(encoding="utf-8"))
    fresh = accounts_db["accounts"].find_one({"_id": officer})
    assert fresh is not None and password_matches(fresh["password_hash"], renewed[officer])
