"""Where attachments are kept: the port, and its GridFS adapter.

One GridFS bucket per unit and period, ``attachments.<period_id>.<unit_id>`` (its ``.files``
and ``.chunks`` collections). FerretDB reads by scanning, and a download reads the chunks
collection with a filter on ``files_id``: per unit and period that collection holds at most
the unit's own budget (``max_report_attachment_bytes``), whatever the number of units; every
other read is by ``_id`` or of the unit's few files. A unit's attachment is not even found
under another unit's path.

The bytes are checked as they stream in (``attachments.ContentCheck``): a bad start is
refused before anything is written, a file over its limit as soon as it passes it, and what was
written of a refused or interrupted upload is removed.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.common.mongo import Document, to_millis
from services.submissions.attachments import (
    Attachment,
    AttachmentState,
    ContentCheck,
    safe_filename,
)

PREFIX = "attachments."
MAX_COLLECTION_NAME = 235
"""FerretDB 1.24 refuses longer collection names (measured); ``.chunks`` is the longest suffix."""


class AttachmentTooLarge(Exception):
    """The content passed the number of bytes it was allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class AttachmentFiled(Exception):
    """The attachment is part of a filed report and stays as filed."""


class UnknownAttachments(Exception):
    """Ids that name no attachment of this unit and period."""

    def __init__(self, ids: Sequence[str]) -> None:
        super().__init__(", ".join(ids))
        self.ids = list(ids)


@dataclass(frozen=True)
class NewAttachment:
    period_id: str
    unit_id: str
    filename: str | None
    """As the client named it: only a hint, made safe once the type is known."""
    uploaded_by: str
    uploaded_at: dt.datetime


class AttachmentStore(abc.ABC):
    @abc.abstractmethod
    async def create_indexes(self) -> None: ...

    @abc.abstractmethod
    async def put(
        self, new: NewAttachment, chunks: AsyncIterable[bytes], *, limit: int
    ) -> Attachment:
        """Store the content if it is an allowed type, as its name (if it names one) says,
        of at most ``limit`` bytes.

        :class:`AttachmentTooLarge`, ``UnsupportedFileType`` or ``EmptyFile`` otherwise (and
        whatever the stream raises), with nothing left stored.
        """

    @abc.abstractmethod
    async def for_unit(self, period_id: str, unit_id: str) -> list[Attachment]:
        """The unit's attachments for the period, oldest first."""

    @abc.abstractmethod
    async def get(self, period_id: str, unit_id: str, attachment_id: str) -> Attachment | None: ...

    @abc.abstractmethod
    async def open(
        self, period_id: str, unit_id: str, attachment_id: str
    ) -> tuple[Attachment, AsyncIterator[bytes]] | None:
        """The attachment and its bytes, streamed; None if there is no such attachment."""

    @abc.abstractmethod
    async def delete(self, period_id: str, unit_id: str, attachment_id: str) -> bool:
        """Remove a draft; False if there is none, :class:`AttachmentFiled` if it was filed."""

    @abc.abstractmethod
    async def mark_submitted(
        self, period_id: str, unit_id: str, attachment_ids: Sequence[str]
    ) -> list[Attachment]:
        """Make these attachments part of a filed report (no longer deletable), in the order
        given; :class:`UnknownAttachments` (and nothing marked) if any is not the unit's."""

    @abc.abstractmethod
    async def total_size(self, period_id: str, unit_id: str) -> int:
        """Bytes the unit keeps for the period."""


def bucket_name(period_id: str, unit_id: str) -> str:
    """``attachments.<period>.<unit>``, in characters any MongoDB-wire server takes.

    Unit ids are slugs (no dot), so the last dot separates the two. The ids reaching here were
    found in the plan; the cleaning and the length cap are for any other caller.
    """
    name = PREFIX + re.sub(r"[^A-Za-z0-9._-]", "_", f"{period_id}.{unit_id}")
    if len(name) + len(".chunks") > MAX_COLLECTION_NAME:
        digest = hashlib.sha256(f"{period_id}\x00{unit_id}".encode()).hexdigest()
        name = PREFIX + digest
    return name


class GridFSAttachmentStore(AttachmentStore):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    async def create_indexes(self) -> None:
        """Nothing shared: each bucket gets GridFS's own indexes (a unique ``files_id`` + ``n``
        on its chunks) when its first file is written."""

    def _bucket(self, period_id: str, unit_id: str) -> AsyncGridFSBucket:
        # Each bucket gets GridFS's own indexes (unique files_id + n) with its first file.
        return AsyncGridFSBucket(self._db, bucket_name=bucket_name(period_id, unit_id))

    def _files(self, period_id: str, unit_id: str) -> AsyncCollection[Document]:
        return self._db[bucket_name(period_id, unit_id) + ".files"]

    def _chunks(self, period_id: str, unit_id: str) -> AsyncCollection[Document]:
        return self._db[bucket_name(period_id, unit_id) + ".chunks"]

    async def put(
        self, new: NewAttachment, chunks: AsyncIterable[bytes], *, limit: int
    ) -> Attachment:
        attachment_id = str(uuid.uuid4())
        uploaded_at = to_millis(new.uploaded_at)
        upload = self._bucket(new.period_id, new.unit_id).open_upload_stream_with_id(
            attachment_id, ""
        )
        check = ContentCheck(new.filename)
        try:
            async for chunk in chunks:
                if check.size + len(chunk) > limit:
                    raise AttachmentTooLarge(limit)
                check.feed(chunk)  # a bad start is refused before its bytes are written
                await upload.write(chunk)
            media_type = check.finish()
            filename = safe_filename(new.filename, media_type)
            metadata = {
                "period_id": new.period_id,
                "unit_id": new.unit_id,
                "media_type": media_type.value,
                "sha256": check.sha256,
                "uploaded_by": new.uploaded_by,
                "uploaded_at": uploaded_at,
                "state": AttachmentState.DRAFT.value,
            }
            await upload.set("filename", filename)
            await upload.set("metadata", metadata)
            await upload.close()
        except BaseException:
            # Shielded: a cancelled request (the client left) still removes what it wrote.
            with contextlib.suppress(Exception):
                await asyncio.shield(upload.abort())
            raise
        return _attachment(
            {"_id": attachment_id, "filename": filename, "length": check.size, **metadata}
        )

    async def for_unit(self, period_id: str, unit_id: str) -> list[Attachment]:
        found = [_from_file(f) for f in await self._files(period_id, unit_id).find({}).to_list()]
        return sorted(found, key=lambda a: (a.uploaded_at, a.attachment_id))

    async def get(self, period_id: str, unit_id: str, attachment_id: str) -> Attachment | None:
        found = await self._files(period_id, unit_id).find_one({"_id": attachment_id})
        return _from_file(found) if found else None

    async def open(
        self, period_id: str, unit_id: str, attachment_id: str
    ) -> tuple[Attachment, AsyncIterator[bytes]] | None:
        bucket = self._bucket(period_id, unit_id)
        try:
            download = await bucket.open_download_stream(attachment_id)
        except NoFile:
            return None
        attachment = _from_file(
            {
                "_id": attachment_id,
                "filename": download.filename,
                "length": download.length,
                "metadata": download.metadata,
            }
        )

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await download.readchunk():
                    yield chunk
            finally:
                await download.close()

        return attachment, chunks()

    async def delete(self, period_id: str, unit_id: str, attachment_id: str) -> bool:
        files = self._files(period_id, unit_id)
        # One conditional delete: a report filing it at the same moment wins or loses whole.
        gone = await files.delete_one(
            {"_id": attachment_id, "metadata.state": AttachmentState.DRAFT.value}
        )
        if gone.deleted_count:
            await self._chunks(period_id, unit_id).delete_many({"files_id": attachment_id})
            return True
        if await files.find_one({"_id": attachment_id}, {"_id": 1}) is not None:
            raise AttachmentFiled(attachment_id)
        return False

    async def mark_submitted(
        self, period_id: str, unit_id: str, attachment_ids: Sequence[str]
    ) -> list[Attachment]:
        found = {i: await self.get(period_id, unit_id, i) for i in dict.fromkeys(attachment_ids)}
        missing = [i for i, a in found.items() if a is None]
        if missing:
            raise UnknownAttachments(missing)
        files = self._files(period_id, unit_id)
        marked: list[Attachment] = []
        for attachment_id in found:
            result = await files.update_one(
                {"_id": attachment_id},
                {"$set": {"metadata.state": AttachmentState.SUBMITTED.value}},
            )
            if not result.matched_count:  # deleted since it was read
                raise UnknownAttachments([attachment_id])
            attachment = found[attachment_id]
            assert attachment is not None
            marked.append(dataclasses.replace(attachment, state=AttachmentState.SUBMITTED))
        return marked

    async def total_size(self, period_id: str, unit_id: str) -> int:
        files = await self._files(period_id, unit_id).find({}, {"length": 1}).to_list()
        return sum(int(f.get("length") or 0) for f in files)


def _from_file(file: Document) -> Attachment:
    """An attachment from its GridFS files document."""
    return _attachment({**(file.get("metadata") or {}), **file})


def _attachment(fields: dict[str, Any]) -> Attachment:
    return Attachment(
        attachment_id=str(fields["_id"]),
        period_id=fields["period_id"],
        unit_id=fields["unit_id"],
        filename=fields["filename"],
        media_type=fields["media_type"],
        size=int(fields["length"]),
        sha256=fields["sha256"],
        uploaded_by=fields["uploaded_by"],
        uploaded_at=fields["uploaded_at"],
        state=AttachmentState(fields["state"]),
    )
