"""Accounts, passwords, API tokens and sign-in throttling: decisions without I/O.

Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second recommended
set). API tokens are shown once and kept only as a SHA-256 digest: a token is 256 random bits,
so a fast digest is enough, and a leaked database yields no usable token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import math
import re
import secrets
import unicodedata
from collections import deque
from dataclasses import dataclass, field

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from services.common.auth import Principal, Role

MIN_PASSWORD_LENGTH = 10
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
TOKEN_PREFIX = "bct_"  # noqa: S105 (how our API tokens begin)

_hasher = PasswordHasher()


class AccountRejected(Exception):
    """An account change that cannot be made; ``code`` for machines, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class Account:
    username: str
    name: str
    role: Role
    unit_id: str | None = None
    email: str | None = None
    machine: bool = False
    active: bool = True
    password_hash: str | None = None

    def principal(self, *, session_id: str | None = None, csrf: str | None = None) -> Principal:
        return Principal(
            subject=self.username,
            role=self.role,
            name=self.name,
            unit_id=self.unit_id,
            session_id=session_id,
            csrf=csrf,
            machine=self.machine,
        )


def normal_username(raw: str) -> str:
    username = unicodedata.normalize("NFC", raw).strip().lower()
    if not USERNAME.match(username):
        raise AccountRejected(
            "invalid_username",
            "Tên đăng nhập gồm 2–64 ký tự: chữ thường không dấu, số, dấu chấm, gạch nối, "
            "gạch dưới; bắt đầu bằng chữ hoặc số.",
        )
    return username


def check_role_unit(role: Role, unit_id: str | None, known_units: set[str]) -> None:
    """An officer belongs to exactly one known unit, office staff to the consolidating unit
    they work for (it decides which plans they act on); the other roles may name one or none."""
    if role is Role.OFFICER and not unit_id:
        raise AccountRejected("unit_required", "Tài khoản cán bộ đơn vị phải gắn với một đơn vị.")
    if role is Role.OFFICE and not unit_id:
        raise AccountRejected(
            "unit_required",
            "Tài khoản cơ quan tổng hợp phải gắn với đơn vị tổng hợp của kế hoạch.",
        )
    if unit_id is not None and unit_id not in known_units:
        raise AccountRejected("unknown_unit", f"Đơn vị “{unit_id}” không có trong kế hoạch nào.")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountRejected(
            "weak_password", f"Mật khẩu phải có ít nhất {MIN_PASSWORD_LENGTH} ký tự."
        )
    return _hasher.hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError, ValueError):
        return False  # a damaged stored hash refuses the sign-in, it does not crash it


_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def waste_a_verification(password: str) -> None:
    """Spend what a real check costs, so an unknown username answers no faster than a known."""
    password_matches(_DUMMY_HASH, password)


def new_password() -> str:
    return secrets.token_urlsafe(15)


@dataclass(frozen=True)
class IssuedToken:
    token_id: str
    secret: str
    """The whole token, shown once to its owner."""
    digest: str


def issue_api_token() -> IssuedToken:
    token_id = secrets.token_hex(6)
    secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
    return IssuedToken(token_id, secret, token_digest(secret))


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_id_of(secret: str) -> str | None:
    """The id part of a presented API token, or None if it does not look like one."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, rest = secret[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not rest or not re.fullmatch(r"[0-9a-f]{12}", token_id):
        return None
    return token_id


def digests_match(stored: str, secret: str) -> bool:
    return hmac.compare_digest(stored, token_digest(secret))


@dataclass
class Throttle:
    """Failed sign-ins per key (an account, an address) in a sliding window.

    Kept in memory: it slows guessing at the one process a person's requests reach. With
    several replicas each keeps its own window, so the limit multiplies by their number,
    still a few guesses a minute against argon2id.
    """

    limit: int
    window: dt.timedelta
    _failures: dict[str, deque[dt.datetime]] = field(default_factory=dict)

    def retry_after(self, key: str, now: dt.datetime) -> int:
        """Seconds to wait before trying again (0: go ahead)."""
        failures = self._recent(key, now)
        if len(failures) < self.limit:
            return 0
        return max(1, math.ceil((failures[0] + self.window - now).total_seconds()))

    def failed(self, key: str, now: dt.datetime) -> None:
        self._recent(key, now).append(now)
        if len(self._failures) > 100_000:  # bounded memory under a spray of usernames
            self._failures = {k: v for k, v in self._failures.items() if v}

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str, now: dt.datetime) -> deque[dt.datetime]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] + self.window <= now:
            failures.popleft()
        return failures
