"""Accounts from the command line: the first admin, a CSV import, and the demo accounts.

    python -m services.submissions.admin create-admin --username quantri --name "Nguyễn Văn A"
    python -m services.submissions.admin import-csv accounts.csv [--out passwords.txt]
    python -m services.submissions.admin demo --out .stack/demo-accounts.txt

Passwords are generated (never a default), printed once (or written to a file only its owner
can read), and stored only as argon2id hashes. The CSV (UTF-8) has a header row with the
columns ``username,name,role,unit_id,email`` (role: officer, office, admin, reader; the last two
may be empty, except an officer's unit). Every row is checked before anything is created: one
bad row (unknown unit, taken or repeated username, missing value) creates no account at all, so
a corrected file can simply be imported again.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from contracts.plan import Plan, UnitKind
from services.common.auth import ROLE_LABELS, Role
from services.common.mongo import connect
from services.common.reference import Catalog
from services.common.settings import SEED_PLAN
from services.submissions.account_store import MongoAccountStore
from services.submissions.accounts import (
    Account,
    AccountRejected,
    check_role_unit,
    hash_password,
    issue_api_token,
    new_password,
    normal_username,
)


class AdminSettings(BaseSettings):
    """Where the submissions database is; what the service reads, minus its keys."""

    model_config = SettingsConfigDict(env_prefix="BAOCAO_", extra="ignore")
    mongo_uri: str = "mongodb://127.0.0.1:27017/"
    namespace: str = Field("", pattern=r"^[a-z0-9-]*$")
    plans: str = str(SEED_PLAN)

    def database_name(self) -> str:
        base = "baocao_submissions"
        return f"{self.namespace.replace('-', '_')}_{base}" if self.namespace else base

    def catalog(self) -> Catalog:
        return Catalog.load([Path(p.strip()) for p in self.plans.split(",") if p.strip()])


@dataclass(frozen=True)
class NewAccount:
    username: str
    name: str
    role: Role
    unit_id: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Created:
    account: NewAccount
    password: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def create(
    store: MongoAccountStore, wanted: Iterable[NewAccount], units: set[str]
) -> tuple[list[Created], AccountRejected | None]:
    """Creates ``wanted`` in order; stops at the first refusal and returns it with what was
    created before it, so the caller still hands out those passwords (an account nobody has
    the password of would need an admin to reset it)."""
    created: list[Created] = []
    for new in wanted:
        try:
            username = normal_username(new.username)
            check_role_unit(new.role, new.unit_id, units)
            password = new_password()
            await store.create(
                Account(
                    username=username,
                    name=new.name,
                    role=new.role,
                    unit_id=new.unit_id,
                    email=new.email,
                    password_hash=hash_password(password),
                ),
                _now(),
            )
        except AccountRejected as error:
            return created, error
        created.append(Created(NewAccount(username, new.name, new.role, new.unit_id), password))
    return created, None


CSV_COLUMNS = ("username", "name", "role", "unit_id", "email")
REQUIRED_COLUMNS = ("username", "name", "role")


@dataclass(frozen=True)
class CsvRows:
    """What a CSV file asks for, each account with its line; or every problem found in it."""

    wanted: list[tuple[int, NewAccount]]
    problems: list[tuple[int, str]]
    """(line, what is wrong)"""


def read_csv(path: Path) -> CsvRows:
    """Every row checked on its own (columns, role, username): all problems, as ``file:line``."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [c.strip() for c in reader.fieldnames or []]
        absent = [c for c in REQUIRED_COLUMNS if c not in header]
        if absent:
            return CsvRows([], [(1, f"thiếu cột {', '.join(absent)}")])
        reader.fieldnames = header
        wanted, problems = [], []
        for row in reader:
            line = reader.line_num
            try:
                wanted.append((line, _row_account(row)))
            except ValueError as error:
                problems.append((line, str(error)))
    return CsvRows(wanted, problems)


def _row_account(row: dict[str | None, str | None]) -> NewAccount:
    if row.get(None):
        raise ValueError(f"thừa cột (chỉ có {', '.join(CSV_COLUMNS)})")
    values = {c: (row.get(c) or "").strip() for c in CSV_COLUMNS}
    empty = [c for c in REQUIRED_COLUMNS if not values[c]]
    if empty:
        raise ValueError(f"thiếu giá trị cột {', '.join(empty)}")
    try:
        role = Role(values["role"])
    except ValueError:
        raise ValueError(
            f"vai trò “{values['role']}” không hợp lệ (officer, office, admin, reader)"
        ) from None
    try:
        username = normal_username(values["username"])
    except AccountRejected as error:
        raise ValueError(error.message) from None
    return NewAccount(
        username, values["name"], role, values["unit_id"] or None, values["email"] or None
    )


def import_problems(path: Path, rows: CsvRows, units: set[str], existing: set[str]) -> list[str]:
    """Everything that would refuse a row, found before any account is created, as
    ``file:line: problem`` in the file's order."""
    problems = list(rows.problems)
    first_line: dict[str, int] = {}
    for line, new in rows.wanted:
        try:
            check_role_unit(new.role, new.unit_id, units)
        except AccountRejected as error:
            problems.append((line, error.message))
        if new.username in existing:
            problems.append((line, f"tên đăng nhập “{new.username}” đã có"))
        if new.username in first_line:
            problems.append(
                (line, f"tên đăng nhập “{new.username}” trùng dòng {first_line[new.username]}")
            )
        first_line.setdefault(new.username, line)
    return [f"{path}:{line}: {problem}" for line, problem in sorted(problems)]


def demo_accounts(plan: Plan) -> list[NewAccount]:
    """Who a rehearsal of the seed plan needs: one of each role, two reporting units."""
    consolidating = plan.consolidating_unit_id
    reporting = plan.reporting_units()
    commune = next((u for u in reporting if u.kind is UnitKind.COMMUNE), reporting[0])
    office = next((u for u in reporting if u.id != commune.id), reporting[-1])
    return [
        NewAccount("quantri", "Quản trị hệ thống", Role.ADMIN),
        NewAccount("tonghop", "Cán bộ Phòng Văn hóa và Thông tin", Role.OFFICE, consolidating),
        NewAccount(f"canbo-{commune.id}", f"Cán bộ {commune.name}", Role.OFFICER, commune.id),
        NewAccount(f"canbo-{office.id}", f"Cán bộ {office.name}", Role.OFFICER, office.id),
        NewAccount("captinh", "Hệ thống cấp tỉnh (chỉ đọc)", Role.READER),
    ]


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    path.chmod(0o600)


def listing(created: list[Created], portal: str, tokens: dict[str, str] | None = None) -> str:
    lines = [f"Đăng nhập tại {portal}/", ""]
    for c in created:
        unit = f", đơn vị {c.account.unit_id}" if c.account.unit_id else ""
        lines.append(
            f"{c.account.username:<28} {c.password}   ({ROLE_LABELS[c.account.role]}{unit})"
        )
    if tokens:
        lines.append("")
        lines += [f"API token {username}: {secret}" for username, secret in tokens.items()]
    return "\n".join(lines) + "\n"


def hand_out(created: list[Created], portal: str, out: str | None) -> None:
    """The generated passwords, printed or written to ``out`` (0600): never lost."""
    text = listing(created, portal)
    if out:
        write_private(Path(out), text)
        print(f"{len(created)} tài khoản đã tạo; mật khẩu ghi trong {out} (0600)")
    else:
        print(text, end="")


async def import_csv(store: MongoAccountStore, args: argparse.Namespace, units: set[str]) -> int:
    """All rows or none: a file with any bad row creates nothing and lists every problem."""
    path = Path(args.file)
    rows = read_csv(path)
    existing = {a.username for a in await store.all()}
    problems = import_problems(path, rows, units, existing)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"lỗi: {len(problems)} vấn đề; chưa tạo tài khoản nào.", file=sys.stderr)
        return 1
    created, refused = await create(store, [new for _, new in rows.wanted], units)
    hand_out(created, args.portal, args.out)
    if refused is not None:  # another admin took a username meanwhile: say which, keep the rest
        print(f"lỗi: {refused.message} Dừng sau {len(created)} tài khoản.", file=sys.stderr)
        return 1
    return 0


async def demo(store: MongoAccountStore, args: argparse.Namespace, catalog: Catalog) -> int:
    units = {u.id for plan in catalog.plans.values() for u in plan.units}
    out = Path(args.out)
    plan = next(iter(catalog.plans.values()))
    wanted = demo_accounts(plan)
    # A command-line run: blocking on a small local file is fine here.
    existing = out.read_text(encoding="utf-8") if out.exists() else None  # noqa: ASYNC240
    if existing and all([await store.get(w.username) for w in wanted]):
        print(existing, end="")
        return 0
    now = _now()
    for w in wanted:
        # A rehearsal starts over: earlier demo accounts are replaced, and whatever signed
        # them in (API tokens, browser sessions) ends with them, since their passwords did.
        await store.revoke_tokens_of(w.username, now)
        await store.close_sessions_of(w.username)
        await store.accounts.delete_one({"_id": w.username})
    created, refused = await create(store, wanted, units)
    if refused is not None:
        raise refused
    tokens = {}
    for holder in (created[2], created[1]):  # an officer's and the office's, for curl
        issued = issue_api_token()
        username = holder.account.username
        await store.add_token(
            issued.token_id, issued.digest, username, "demo curl", "make up", _now()
        )
        tokens[username] = issued.secret
    text = listing(created, args.portal, tokens)
    write_private(out, text)
    print(text, end="")
    return 0


async def run(args: argparse.Namespace) -> int:
    settings = AdminSettings()
    catalog = settings.catalog()
    units = {u.id for plan in catalog.plans.values() for u in plan.units}
    client = connect(settings.mongo_uri)
    try:
        store = MongoAccountStore(client[settings.database_name()])
        if args.command == "create-admin":
            wanted = NewAccount(args.username, args.name, Role.ADMIN)
            created, refused = await create(store, [wanted], units)
            if refused is not None:
                raise refused
            print(listing(created, args.portal), end="")
            return 0
        if args.command == "import-csv":
            return await import_csv(store, args, units)
        return await demo(store, args, catalog)
    except AccountRejected as error:
        print(f"lỗi: {error.message}", file=sys.stderr)
        return 1
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.submissions.admin")
    parser.add_argument(
        "--portal", default=os.environ.get("BAOCAO_PORTAL_URL", "http://127.0.0.1:8000")
    )
    commands = parser.add_subparsers(dest="command", required=True)
    first = commands.add_parser("create-admin", help="the first admin (password generated)")
    first.add_argument("--username", required=True)
    first.add_argument("--name", required=True)
    imported = commands.add_parser("import-csv", help="accounts from a CSV file")
    imported.add_argument("file", help=f"UTF-8, header row: {','.join(CSV_COLUMNS)}")
    imported.add_argument("--out", help="write the passwords here (0600) instead of printing")
    demo = commands.add_parser("demo", help="demo accounts of the first plan (development only)")
    demo.add_argument("--out", required=True)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
