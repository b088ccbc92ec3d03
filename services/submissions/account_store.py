"""Where accounts, sign-in sessions and API tokens are kept (MongoDB; all read by ``_id``).

- ``accounts``: ``_id`` = username. A few hundred documents at most (one per officer).
- ``sessions``: ``_id`` = session id; one per signed-in browser, deleted at sign-out and swept
  after expiry, so the per-request lookup stays on a small collection.
- ``api_tokens``: ``_id`` = the token's public id; the secret is kept as a SHA-256 digest.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.auth import Role
from services.common.mongo import Document
from services.submissions.accounts import Account, AccountRejected


def _account(doc: Document) -> Account:
    return Account(
        username=doc["_id"],
        name=doc.get("name") or doc["_id"],
        role=Role(doc["role"]),
        unit_id=doc.get("unit_id"),
        email=doc.get("email"),
        machine=bool(doc.get("machine")),
        active=bool(doc.get("active", True)),
        password_hash=doc.get("password_hash"),
    )


def public(account: Account) -> dict[str, Any]:
    return {
        "username": account.username,
        "name": account.name,
        "role": account.role.value,
        "unit_id": account.unit_id,
        "email": account.email,
        "machine": account.machine,
        "active": account.active,
    }


class MongoAccountStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.accounts = db["accounts"]
        self.sessions = db["sessions"]
        self.tokens = db["api_tokens"]

    # --- accounts ---------------------------------------------------------------------------

    async def get(self, username: str) -> Account | None:
        doc = await self.accounts.find_one({"_id": username})
        return _account(doc) if doc else None

    async def create(self, account: Account, now: dt.datetime) -> None:
        try:
            await self.accounts.insert_one(
                {
                    "_id": account.username,
                    "name": account.name,
                    "role": account.role.value,
                    "unit_id": account.unit_id,
                    "email": account.email,
                    "machine": account.machine,
                    "active": account.active,
                    "password_hash": account.password_hash,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        except DuplicateKeyError as error:
            raise AccountRejected(
                "account_exists", f"Tên đăng nhập “{account.username}” đã có."
            ) from error

    async def update(self, username: str, changes: dict[str, Any], now: dt.datetime) -> bool:
        result = await self.accounts.update_one(
            {"_id": username}, {"$set": {**changes, "updated_at": now}}
        )
        return result.matched_count == 1

    async def all(self) -> list[Account]:
        docs = await self.accounts.find({}).to_list(None)
        return sorted((_account(d) for d in docs), key=lambda a: a.username)

    async def count_admins(self) -> int:
        return sum(1 for a in await self.all() if a.role is Role.ADMIN and a.active)

    # --- sessions ---------------------------------------------------------------------------

    async def open_session(
        self, session_id: str, username: str, csrf: str, now: dt.datetime, expires_at: dt.datetime
    ) -> None:
        await self.sessions.insert_one(
            {
                "_id": session_id,
                "username": username,
                "csrf": csrf,
                "created_at": now,
                "expires_at": expires_at,
            }
        )

    async def session(self, session_id: str) -> Document | None:
        return await self.sessions.find_one({"_id": session_id})

    async def close_session(self, session_id: str) -> None:
        await self.sessions.delete_one({"_id": session_id})

    async def close_sessions_of(self, username: str) -> None:
        await self.sessions.delete_many({"username": username})

    async def sweep_sessions(self, now: dt.datetime) -> int:
        result = await self.sessions.delete_many({"expires_at": {"$lte": now}})
        return result.deleted_count

    # --- API tokens -------------------------------------------------------------------------

    async def add_token(
        self,
        token_id: str,
        digest: str,
        username: str,
        label: str,
        created_by: str,
        now: dt.datetime,
    ) -> None:
        await self.tokens.insert_one(
            {
                "_id": token_id,
                "digest": digest,
                "username": username,
                "label": label,
                "created_by": created_by,
                "created_at": now,
                "revoked_at": None,
            }
        )

    async def token(self, token_id: str) -> Document | None:
        return await self.tokens.find_one({"_id": token_id})

    async def tokens_of(self, username: str | None = None) -> list[Document]:
        query = {} if username is None else {"username": username}
        docs = await self.tokens.find(query, {"digest": 0}).to_list(None)
        return sorted(docs, key=lambda d: d["created_at"], reverse=True)

    async def revoke_token(self, token_id: str, now: dt.datetime) -> Document | None:
        doc = await self.token(token_id)
        if doc is None:
            return None
        if doc.get("revoked_at") is None:
            await self.tokens.update_one({"_id": token_id}, {"$set": {"revoked_at": now}})
            doc["revoked_at"] = now
        return doc

    async def revoke_tokens_of(self, username: str, now: dt.datetime) -> int:
        """Revokes every live token of ``username``; how many were live."""
        result = await self.tokens.update_many(
            {"username": username, "revoked_at": None}, {"$set": {"revoked_at": now}}
        )
        return result.modified_count
