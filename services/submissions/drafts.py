"""Drafts of the report form: what a unit typed and saved, to be resumed and filed later.

One document per period and unit (``_id`` = ``period|unit``) holding the form's raw values as
typed, who saved them and when. FerretDB reads by scanning, so the collection is kept small: a
draft is deleted as soon as its report is filed.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.common.mongo import Document

MAX_VALUES = 2_000
"""More form fields than any plan gives a unit: a draft past this is not a form's."""


@dataclass(frozen=True)
class Draft:
    values: dict[str, str]
    saved_by: str
    saved_at: dt.datetime


def draft_id(period_id: str, unit_id: str) -> str:
    return f"{period_id}|{unit_id}"


class DraftStore(abc.ABC):
    @abc.abstractmethod
    async def get(self, period_id: str, unit_id: str) -> Draft | None: ...

    @abc.abstractmethod
    async def save(
        self,
        period_id: str,
        unit_id: str,
        values: Mapping[str, str],
        saved_by: str,
        saved_at: dt.datetime,
    ) -> None:
        """Replace the unit's draft for the period with these values."""

    @abc.abstractmethod
    async def delete(self, period_id: str, unit_id: str) -> None: ...


class MongoDraftStore(DraftStore):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._drafts: AsyncCollection[Document] = db["drafts"]

    async def get(self, period_id: str, unit_id: str) -> Draft | None:
        found = await self._drafts.find_one({"_id": draft_id(period_id, unit_id)})
        if found is None:
            return None
        saved_at: dt.datetime = found["saved_at"]
        return Draft(
            values={str(v["name"]): str(v["value"]) for v in found["values"]},
            saved_by=found["saved_by"],
            saved_at=saved_at if saved_at.tzinfo else saved_at.replace(tzinfo=dt.UTC),
        )

    async def save(
        self,
        period_id: str,
        unit_id: str,
        values: Mapping[str, str],
        saved_by: str,
        saved_at: dt.datetime,
    ) -> None:
        if len(values) > MAX_VALUES:
            raise ValueError(f"a draft of {len(values)} fields is not a report form's")
        await self._drafts.replace_one(
            {"_id": draft_id(period_id, unit_id)},
            {
                "period_id": period_id,
                "unit_id": unit_id,
                # Field names hold dots, which MongoDB reads as paths, and FerretDB stores no
                # nested arrays: kept as a list of name/value documents.
                "values": [{"name": k, "value": v} for k, v in values.items()],
                "saved_by": saved_by,
                "saved_at": saved_at,
            },
            upsert=True,
        )

    async def delete(self, period_id: str, unit_id: str) -> None:
        await self._drafts.delete_one({"_id": draft_id(period_id, unit_id)})
