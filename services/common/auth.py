"""Who is asking, for every service: one identity, signed by submissions, checked everywhere.

People sign in to the submissions service. It hands them a short-lived token signed with its
Ed25519 private key (a JWT, ``EdDSA``): in the ``baocao_session`` cookie for a browser, in the
answer of ``POST /api/v1/auth/token`` for a machine client holding an API token. Every service
checks the signature with the public key from its settings; none needs the accounts database.

Cookies are sent whatever the port, so a person signed in on port 8000 is signed in on 8001 to
8003 too. A cookie rides along with cross-site requests, so a state-changing request carried by
the cookie must also send the token's ``csrf`` claim back (``X-CSRF-Token`` header, or the
form's ``csrf_token`` field, checked by the page itself); one carried by ``Authorization:
Bearer`` needs nothing more, since no browser adds that header on its own.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Protocol

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from fastapi import Depends, Request

from contracts.plan.model import Plan
from services.common.errors import ApiProblem

log = logging.getLogger(__name__)

SESSION_COOKIE = "baocao_session"
CSRF_HEADER = "X-CSRF-Token"
ISSUER = "baocao"
AUDIENCE = "baocao"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Role(StrEnum):
    OFFICER = "officer"
    """Files and reads the reports of exactly one unit."""
    OFFICE = "office"
    """Staff of the plan's consolidating office: read all, review, grant exceptions."""
    ADMIN = "admin"
    """Accounts, tokens, contacts, the audit trail and the operations endpoints."""
    READER = "reader"
    """Reads everything, changes nothing: the province's system."""


ROLE_LABELS = {
    Role.OFFICER: "Cán bộ đơn vị",
    Role.OFFICE: "Cơ quan tổng hợp",
    Role.ADMIN: "Quản trị",
    Role.READER: "Chỉ đọc (cấp trên)",
}


@dataclass(frozen=True)
class Principal:
    """A signed-in person or machine, as every service sees it."""

    subject: str
    role: Role
    name: str = ""
    unit_id: str | None = None
    session_id: str | None = None
    csrf: str | None = None
    via_cookie: bool = False
    machine: bool = False
    api_token: str | None = None
    """The id of the API token this identity was exchanged for (claim ``tok``): submissions
    refuses the token once that API token is revoked."""

    def can_read_unit(self, unit_id: str) -> bool:
        return self.reads_all or self.unit_id == unit_id

    def can_file_for(self, unit_id: str) -> bool:
        return self.role is Role.OFFICER and self.unit_id == unit_id

    @property
    def reads_all(self) -> bool:
        return self.role in {Role.OFFICE, Role.ADMIN, Role.READER}

    def acts_on(self, plan: Plan) -> bool:
        """False only for office staff and a plan their unit does not consolidate: they see
        and decide for their own plans (``Plan.overseen_by``); other roles as their role says."""
        return self.role is not Role.OFFICE or plan.overseen_by(self.unit_id)


@dataclass(frozen=True)
class TokenSigner:
    """Issues tokens (submissions only: it alone holds the private key)."""

    private_key: Ed25519PrivateKey
    lifetime: dt.timedelta = dt.timedelta(minutes=30)

    def issue(
        self, principal: Principal, now: dt.datetime, lifetime: dt.timedelta | None = None
    ) -> str:
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": principal.subject,
            "role": principal.role.value,
            "name": principal.name,
            "iat": int(now.timestamp()),
            "exp": int((now + (lifetime or self.lifetime)).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        for claim, value in (
            ("unit", principal.unit_id),
            ("sid", principal.session_id),
            ("csrf", principal.csrf),
            ("tok", principal.api_token),
        ):
            if value is not None:
                claims[claim] = value
        if principal.machine:
            claims["machine"] = True
        return jwt.encode(claims, self.private_key, algorithm="EdDSA")


class InvalidToken(Exception):
    """A token that is malformed, expired, or not signed by our key."""


@dataclass(frozen=True)
class TokenVerifier:
    public_key: Ed25519PublicKey
    leeway: dt.timedelta = dt.timedelta(seconds=30)
    """Clocks of two hosts differ a little; a token is not refused for that."""

    def verify(self, token: str, now: dt.datetime) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.public_key,
                algorithms=["EdDSA"],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={
                    "require": ["exp", "iat", "sub", "role"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as error:
            raise InvalidToken(str(error)) from error
        # Expiry against the service's clock, which tests and rehearsals move.
        if claims["exp"] + self.leeway.total_seconds() < now.timestamp():
            raise InvalidToken("expired")
        return claims

    def principal(self, token: str, now: dt.datetime, *, via_cookie: bool) -> Principal:
        claims = self.verify(token, now)
        try:
            role = Role(claims["role"])
        except ValueError as error:
            raise InvalidToken(f"unknown role {claims['role']!r}") from error
        if role is Role.OFFICER and not claims.get("unit"):
            raise InvalidToken("an officer's token names no unit")
        return Principal(
            subject=str(claims["sub"]),
            role=role,
            name=str(claims.get("name") or ""),
            unit_id=claims.get("unit"),
            session_id=claims.get("sid"),
            csrf=claims.get("csrf"),
            via_cookie=via_cookie,
            machine=bool(claims.get("machine")),
            api_token=claims.get("tok"),
        )


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(path.read_bytes())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path}: not an Ed25519 public key")
    return key


def write_key_pair(private_path: Path, public_path: Path) -> None:
    """A new key pair; the private half readable by its owner only."""
    key = Ed25519PrivateKey.generate()
    private_path.parent.mkdir(parents=True, exist_ok=True)
    private_path.touch(mode=0o600, exist_ok=True)
    private_path.chmod(0o600)
    private_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


class Authenticator(Protocol):
    """Finds who sent a request; None when nobody is signed in (or the token is bad)."""

    async def authenticate(self, request: Request) -> Principal | None: ...


@dataclass
class TokenAuthenticator:
    """What services other than submissions use: a valid signature is enough."""

    verifier: TokenVerifier
    now: Callable[[], dt.datetime]

    async def authenticate(self, request: Request) -> Principal | None:
        found = presented_token(request)
        if found is None:
            return None
        token, via_cookie = found
        try:
            return self.verifier.principal(token, self.now(), via_cookie=via_cookie)
        except InvalidToken as error:
            log.info("refused token: %s", error)
            return None


def presented_token(request: Request) -> tuple[str, bool] | None:
    """The bearer token, else the session cookie; and whether it came by cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return cookie, True
    return None


# --- FastAPI dependencies -------------------------------------------------------------------


def unauthenticated() -> ApiProblem:
    return ApiProblem(
        401,
        "not_signed_in",
        "Bạn chưa đăng nhập hoặc phiên đăng nhập đã hết hạn; vui lòng đăng nhập lại.",
        headers={"WWW-Authenticate": 'Bearer realm="baocao"'},
    )


def forbidden() -> ApiProblem:
    return ApiProblem(403, "forbidden", "Tài khoản của bạn không có quyền thực hiện thao tác này.")


async def signed_in(request: Request) -> Principal:
    """The caller, or 401; a cookie-borne change also needs its CSRF token (403 otherwise)."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    authenticator: Authenticator | None = getattr(request.app.state, "authenticator", None)
    principal = await authenticator.authenticate(request) if authenticator else None
    if principal is None:
        raise unauthenticated()
    if principal.via_cookie and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not (principal.csrf and sent and hmac.compare_digest(sent, principal.csrf)):
            raise ApiProblem(
                403,
                "csrf_failed",
                "Yêu cầu thiếu mã xác thực biểu mẫu (CSRF); vui lòng tải lại trang và thử lại.",
            )
    request.state.principal = principal
    return principal


SignedIn = Annotated[Principal, Depends(signed_in)]


def require(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only these roles (403 for the others, 401 if nobody)."""
    allowed = frozenset(roles)

    async def check(principal: SignedIn) -> Principal:
        if principal.role not in allowed:
            raise forbidden()
        return principal

    return check


def roles(names: Iterable[Role]) -> list[Any]:
    """``dependencies=`` for a router or route admitting ``names``."""
    return [Depends(require(*names))]


ReadsAll = Annotated[Principal, Depends(require(Role.OFFICE, Role.ADMIN, Role.READER))]
Staff = Annotated[Principal, Depends(require(Role.OFFICE, Role.ADMIN))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
