"""Calendar feed tokens: a link a calendar app can poll for one unit's deadlines.

Calendar apps (Outlook, Thunderbird, a phone) subscribe to a URL and cannot send a header or
a cookie, so the feed is authorised by a token in its query string. It is signed with the
same Ed25519 key as sign-in tokens (submissions issues it, deadlines checks it) but can never
stand in for one, nor one for it: it has its own audience and a ``purpose`` claim, and no
``role``, so ``TokenVerifier`` (audience ``baocao``, ``role`` required) refuses it, and a
sign-in token (audience ``baocao``, no purpose) is refused here. It names one unit and opens
that unit's feed only. It lasts long (a subscription is set up once); there is no revocation
list: a leaked link is retired by rotating the key, which signs every session out too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.common.auth import ISSUER, InvalidToken

FEED_AUDIENCE = "baocao-calendar"
PURPOSE = "calendar"
FEED_LIFETIME = dt.timedelta(days=366)


@dataclass(frozen=True)
class FeedGrant:
    """What a valid feed token allows: reading ``unit_id``'s calendar until ``expires_at``."""

    unit_id: str
    subject: str
    expires_at: dt.datetime


def issue_feed_token(
    key: Ed25519PrivateKey,
    *,
    unit_id: str,
    subject: str,
    now: dt.datetime,
    lifetime: dt.timedelta = FEED_LIFETIME,
) -> tuple[str, dt.datetime]:
    """A token for ``unit_id``'s feed, issued to ``subject``; and when it expires."""
    expires_at = now + lifetime
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": FEED_AUDIENCE,
        "purpose": PURPOSE,
        "sub": subject,
        "unit": unit_id,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, key, algorithm="EdDSA"), expires_at


def verify_feed_token(
    key: Ed25519PublicKey,
    token: str,
    now: dt.datetime,
    *,
    leeway: dt.timedelta = dt.timedelta(seconds=30),
) -> FeedGrant:
    """The grant a feed token carries; ``InvalidToken`` if it is not one of ours, has
    expired (by the service's clock) or is a token of another purpose."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["EdDSA"],
            audience=FEED_AUDIENCE,
            issuer=ISSUER,
            # Times against the service's clock (below), which rehearsals move, not the host's.
            options={
                "require": ["exp", "iat", "sub", "unit", "purpose"],
                "verify_exp": False,
                "verify_iat": False,
            },
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from error
    if claims["purpose"] != PURPOSE or "role" in claims:
        raise InvalidToken("not a calendar feed token")
    if claims["exp"] + leeway.total_seconds() < now.timestamp():
        raise InvalidToken("expired")
    return FeedGrant(
        unit_id=str(claims["unit"]),
        subject=str(claims["sub"]),
        expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
    )
