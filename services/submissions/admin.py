"""Accounts from the command line: the first admin, a CSV import, and the demo accounts.

    python -m services.submissions.admin create-admin --username quantri --name "Nguyễn Văn A"
    python -m services.submissions.admin import-csv accounts.csv [--out passwords.txt]
    python -m services.submissions.admin demo --out .stack/demo-accounts.txt

Passwords are generated (never a default), printed once (or written to a file only its owner
can read), and stored only as argon2id hashes. The CSV has a header row with the columns
``username,name,role,unit_id,email`` (role: officer, office, admin, reader).
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
) -> list[Created]:
    created = []
    for new in wanted:
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
        created.append(Created(NewAccount(username, new.name, new.role, new.unit_id), password))
    return created


def read_csv(path: Path) -> list[NewAccount]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle))
    wanted = []
    for number, row in enumerate(rows, start=2):
        try:
            wanted.append(
                NewAccount(
                    username=row["username"],
                    name=row["name"],
                    role=Role(row["role"].strip()),
                    unit_id=(row.get("unit_id") or "").strip() or None,
                    email=(row.get("email") or "").strip() or None,
                )
            )
        except (KeyError, ValueError) as error:
            raise SystemExit(f"{path}:{number}: {error}") from error
    return wanted


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


async def run(args: argparse.Namespace) -> int:
    settings = AdminSettings()
    catalog = settings.catalog()
    units = {u.id for plan in catalog.plans.values() for u in plan.units}
    client = connect(settings.mongo_uri)
    try:
        store = MongoAccountStore(client[settings.database_name()])
        if args.command == "create-admin":
            created = await create(store, [NewAccount(args.username, args.name, Role.ADMIN)], units)
            print(listing(created, args.portal), end="")
        elif args.command == "import-csv":
            created = await create(store, read_csv(Path(args.file)), units)
            text = listing(created, args.portal)
            if args.out:
                write_private(Path(args.out), text)
                print(f"{len(created)} accounts created; passwords in {args.out} (0600)")
            else:
                print(text, end="")
        elif args.command == "demo":
            out = Path(args.out)
            plan = next(iter(catalog.plans.values()))
            wanted = demo_accounts(plan)
            # A command-line run: blocking on a small local file is fine here.
            existing = out.read_text(encoding="utf-8") if out.exists() else None  # noqa: ASYNC240
            if existing and all([await store.get(w.username) for w in wanted]):
                print(existing, end="")
                return 0
            for w in wanted:  # a rehearsal starts over: earlier demo accounts are replaced
                await store.accounts.delete_one({"_id": w.username})
            created = await create(store, wanted, units)
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
    except AccountRejected as error:
        print(f"lỗi: {error.message}", file=sys.stderr)
        return 1
    finally:
        await client.close()
    return 0


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
    imported.add_argument("file")
    imported.add_argument("--out", help="write the passwords here (0600) instead of printing")
    demo = commands.add_parser("demo", help="demo accounts of the first plan (development only)")
    demo.add_argument("--out", required=True)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
