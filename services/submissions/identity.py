"""Signing in, out, and knowing who asks: the submissions side of ``services.common.auth``.

Submissions is where identities live, so it checks more than the other services do:
- a cookie or bearer token naming a session is valid only while that session exists (sign-out
  and account deactivation end it here at once; elsewhere within the token's 30 minutes);
- the account behind any token must still be active, and its current role and unit apply (a
  token for no account at all is trusted as signed: only the key's holder can make one);
- an API token (``bct_…``) is looked up by its id and compared by digest; a token exchanged
  for one (``exchange``) names it (claim ``tok``) and is refused here as soon as it is revoked.
  The other services only check signatures, so there an exchanged token lasts its 5 minutes.

A browser's token is renewed as it is used (``renew_cookie``), so 30 idle minutes end a
sign-in, and the session's own expiry ends it after ``session_hours`` whatever happens.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass, field, replace

from fastapi import Request, Response

from services.common.auth import (
    SESSION_COOKIE,
    InvalidToken,
    Principal,
    TokenSigner,
    TokenVerifier,
    presented_token,
)
from services.common.clock import Clock
from services.submissions.account_store import MongoAccountStore
from services.submissions.accounts import (
    Account,
    Throttle,
    digests_match,
    password_matches,
    token_id_of,
    waste_a_verification,
)
from services.submissions.audit import Action, AuditTrail, client_address

log = logging.getLogger(__name__)

RENEW_AFTER = dt.timedelta(minutes=5)
# Short: the other services cannot see a revocation, so this is how long one takes there.
API_TOKEN_EXCHANGE_LIFETIME = dt.timedelta(minutes=5)


class SignInRefused(Exception):
    """Wrong username or password, or an inactive account (the same answer for all three)."""


class SignInThrottled(Exception):
    """Too many failed sign-ins for this account or from this address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Identity:
    store: MongoAccountStore
    signer: TokenSigner
    verifier: TokenVerifier
    clock: Clock
    audit: AuditTrail
    session_lifetime: dt.timedelta
    idle: dt.timedelta
    cookie_secure: bool
    by_account: Throttle = field(default_factory=lambda: Throttle(5, dt.timedelta(minutes=15)))
    by_address: Throttle = field(default_factory=lambda: Throttle(20, dt.timedelta(minutes=15)))

    # --- who asks ---------------------------------------------------------------------------

    async def authenticate(self, request: Request) -> Principal | None:
        found = presented_token(request)
        if found is None:
            return None
        token, via_cookie = found
        if not via_cookie and token_id_of(token) is not None:
            return await self._api_token(token)
        now = self.clock.now()
        try:
            claims = self.verifier.verify(token, now)
            principal = self.verifier.principal(token, now, via_cookie=via_cookie)
        except InvalidToken as error:
            log.info("refused token: %s", error)
            return None
        account = await self.store.get(principal.subject)
        if account is None:
            # Signed by our key for no account of ours: minted by whoever holds the key (an
            # integration, a test). Sessions always name an account, so these have none.
            return None if principal.session_id else principal
        if not account.active:
            return None
        if principal.session_id is not None:
            session = await self.store.session(principal.session_id)
            if session is None or _aware(session["expires_at"]) <= now:
                return None
            current = account.principal(session_id=principal.session_id, csrf=session["csrf"])
            current = replace(current, via_cookie=via_cookie)
            if via_cookie and now.timestamp() - claims["iat"] > RENEW_AFTER.total_seconds():
                request.state.renew = (current, _aware(session["expires_at"]))
            return current
        # A token without a session: issued to an API client by ``exchange``, for an API
        # token that must still be live.
        if principal.api_token is not None and not await self._live(principal.api_token):
            return None
        return replace(account.principal(), via_cookie=via_cookie, api_token=principal.api_token)

    async def _live(self, token_id: str) -> bool:
        doc = await self.store.token(token_id)
        return doc is not None and doc.get("revoked_at") is None

    async def _api_token(self, secret: str) -> Principal | None:
        token_id = token_id_of(secret)
        doc = await self.store.token(token_id) if token_id else None
        if doc is None or doc.get("revoked_at") is not None:
            return None
        if not digests_match(doc["digest"], secret):
            return None
        account = await self.store.get(doc["username"])
        if account is None or not account.active:
            return None
        return replace(account.principal(), machine=True, api_token=token_id)

    def exchange(self, principal: Principal) -> tuple[str, dt.datetime]:
        """A short-lived token for the other services, for a caller already known here."""
        now = self.clock.now()
        plain = replace(principal, session_id=None, csrf=None, via_cookie=False)
        return self.signer.issue(plain, now, API_TOKEN_EXCHANGE_LIFETIME), (
            now + API_TOKEN_EXCHANGE_LIFETIME
        )

    # --- signing in and out -----------------------------------------------------------------

    async def sign_in(self, username: str, password: str, request: Request) -> tuple[Account, str]:
        """The account and a session token for its cookie; raises if refused or throttled."""
        now = self.clock.now()
        address = client_address(request) or "-"
        wait = max(
            self.by_account.retry_after(username, now),
            self.by_address.retry_after(address, now),
        )
        if wait:
            await self.audit.record(
                Action.SIGN_IN_FAILED,
                actor_name=username,
                request=request,
                outcome="throttled",
            )
            raise SignInThrottled(wait)
        account = await self.store.get(username)
        if account is None:
            waste_a_verification(password)
        ok = (
            account is not None
            and account.active
            and not account.machine
            and password_matches(account.password_hash, password)
        )
        if not ok or account is None:
            self.by_account.failed(username, now)
            self.by_address.failed(address, now)
            await self.audit.record(
                Action.SIGN_IN_FAILED, actor_name=username, request=request, outcome="refused"
            )
            raise SignInRefused(username)
        self.by_account.succeeded(username)
        session_id, csrf = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        expires_at = now + self.session_lifetime
        await self.store.open_session(session_id, account.username, csrf, now, expires_at)
        principal = account.principal(session_id=session_id, csrf=csrf)
        await self.audit.record(Action.SIGN_IN, actor=principal, request=request)
        return account, self._session_token(principal, expires_at)

    async def sign_out(self, principal: Principal, request: Request) -> None:
        if principal.session_id is not None:
            await self.store.close_session(principal.session_id)
        await self.audit.record(Action.SIGN_OUT, actor=principal, request=request)

    def _session_token(self, principal: Principal, expires_at: dt.datetime) -> str:
        now = self.clock.now()
        lifetime = min(self.idle, expires_at - now)
        return self.signer.issue(principal, now, lifetime)

    # --- the cookie -------------------------------------------------------------------------

    def set_cookie(self, response: Response, token: str) -> None:
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=int(self.idle.total_seconds()),
            path="/",
            secure=self.cookie_secure,
            httponly=True,
            samesite="lax",
        )

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=self.cookie_secure, httponly=True, samesite="lax"
        )

    def renew_cookie(self, request: Request, response: Response) -> None:
        """Called after each response: a browser that is in use keeps its sign-in."""
        renew = getattr(request.state, "renew", None)
        if renew is None or SESSION_COOKIE in response.headers.get("set-cookie", ""):
            return
        principal, expires_at = renew
        self.set_cookie(response, self._session_token(principal, expires_at))


def _aware(moment: dt.datetime) -> dt.datetime:
    # PyMongo hands back naive UTC unless the client is tz-aware.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
