"""Sign-in for the benchmarks: a key pair of their own, and a token per unit.

The services under test trust the key pair in ``.stack/bench-keys/``; a report is filed with
its unit's officer token, reads with an admin token, as on a real deployment.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path

from services.common.auth import Principal, Role, TokenSigner, load_private_key, write_key_pair

KEY_DIR = Path(__file__).resolve().parents[1] / ".stack" / "bench-keys"
LIFETIME = dt.timedelta(days=3650)
"""The services run on a clock set ahead (``CLOCK_START``); the tokens outlive it."""


@cache
def key_files() -> tuple[Path, Path]:
    private, public = KEY_DIR / "signing-key.pem", KEY_DIR / "signing-key.pub.pem"
    if not (private.exists() and public.exists()):
        write_key_pair(private, public)
    return private, public


def key_env() -> dict[str, str]:
    private, public = key_files()
    return {
        "BAOCAO_AUTH_PRIVATE_KEY_FILE": str(private),
        "BAOCAO_AUTH_PUBLIC_KEY_FILE": str(public),
    }


@cache
def bearer(role: Role, unit_id: str | None = None) -> dict[str, str]:
    signer = TokenSigner(load_private_key(key_files()[0]))
    principal = Principal(
        subject=f"bench-{role.value}-{unit_id or 'all'}", role=role, unit_id=unit_id
    )
    token = signer.issue(principal, dt.datetime(2020, 1, 1, tzinfo=dt.UTC), LIFETIME)
    return {"Authorization": f"Bearer {token}"}
