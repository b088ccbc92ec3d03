"""Sign-in for tests: one key pair per checkout, and tokens minted with it.

The key pair lives in the ignored ``.stack/test-keys/`` folder, made on first use; the test
session exports its paths (``BAOCAO_AUTH_*_KEY_FILE``) so that services built in-process and
services started as processes trust the same key. A token minted here is what submissions
itself issues to an API client (``POST /api/v1/auth/token``): no session behind it.
"""

from __future__ import annotations

import datetime as dt
import os
from functools import cache
from pathlib import Path

from services.common.auth import Principal, Role, TokenSigner, load_private_key, write_key_pair

ROOT = Path(__file__).resolve().parents[2]
KEY_DIR = ROOT / ".stack" / "test-keys"


@cache
def key_files() -> tuple[Path, Path]:
    private, public = KEY_DIR / "signing-key.pem", KEY_DIR / "signing-key.pub.pem"
    if not (private.exists() and public.exists()):
        write_key_pair(private, public)
    return private, public


def export_key_files() -> None:
    private, public = key_files()
    os.environ.setdefault("BAOCAO_AUTH_PRIVATE_KEY_FILE", str(private))
    os.environ.setdefault("BAOCAO_AUTH_PUBLIC_KEY_FILE", str(public))


def token(
    role: Role,
    unit_id: str | None = None,
    *,
    subject: str | None = None,
    now: dt.datetime | None = None,
    lifetime: dt.timedelta = dt.timedelta(days=3650),
) -> str:
    """A bearer token for ``role`` (officers need ``unit_id``).

    Long-lived by default because services under test may run on a clock set years ahead.
    """
    signer = TokenSigner(load_private_key(key_files()[0]))
    principal = Principal(
        subject=subject or f"test-{role.value}-{unit_id or 'all'}",
        role=role,
        name=f"Tài khoản thử {role.value}",
        unit_id=unit_id,
        machine=True,
    )
    issued = now or dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    return signer.issue(principal, issued, lifetime)


def bearer(role: Role, unit_id: str | None = None, **kwargs: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, unit_id, **kwargs)}"}  # type: ignore[arg-type]
