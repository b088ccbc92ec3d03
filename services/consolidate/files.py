"""Where report files are kept: the port, and its GridFS adapter.

One bucket per period, ``documents.<period_id>`` (FerretDB reads by scanning, so a bucket stays
the size of one period's versions: three files each, one or two chunks per file). A file's
``_id`` is ``<event_id>/<filename>``: the event that announces the version owns its files, so
a consolidation that loses a race (and abandons its event) deletes exactly what it wrote and
can never overwrite the files of the version that won.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo.asynchronous.database import AsyncDatabase

from services.common.mongo import Document
from services.consolidate.documents import RenderedFile

BUCKETS = "documents."


@dataclass(frozen=True)
class StoredFile:
    filename: str
    media_type: str
    sha256: str
    data: bytes


class FileStore(abc.ABC):
    @abc.abstractmethod
    async def put(self, period_id: str, event_id: str, files: list[RenderedFile]) -> None:
        """Store a version's files (again: replaced, the bytes are the same event's)."""

    @abc.abstractmethod
    async def get(self, period_id: str, event_id: str, filename: str) -> StoredFile | None: ...

    @abc.abstractmethod
    async def discard(self, period_id: str, event_id: str, filenames: list[str]) -> None:
        """Remove the files of an event that will never be published."""


def file_id(event_id: str, filename: str) -> str:
    return f"{event_id}/{filename}"


class GridFSFileStore(FileStore):
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self._db = db

    def _bucket(self, period_id: str) -> AsyncGridFSBucket:
        return AsyncGridFSBucket(self._db, bucket_name=BUCKETS + period_id)

    async def put(self, period_id: str, event_id: str, files: list[RenderedFile]) -> None:
        bucket = self._bucket(period_id)
        await self.discard(period_id, event_id, [f.filename for f in files])
        for f in files:
            await bucket.upload_from_stream_with_id(
                file_id(event_id, f.filename),
                f.filename,
                f.data,
                metadata={"media_type": f.media_type, "sha256": f.sha256},
            )

    async def get(self, period_id: str, event_id: str, filename: str) -> StoredFile | None:
        try:
            download = await self._bucket(period_id).open_download_stream(
                file_id(event_id, filename)
            )
        except NoFile:
            return None
        try:
            data = await download.read()
        finally:
            await download.close()
        meta = download.metadata or {}
        return StoredFile(filename, meta.get("media_type", ""), meta.get("sha256", ""), data)

    async def discard(self, period_id: str, event_id: str, filenames: list[str]) -> None:
        bucket = self._bucket(period_id)
        for filename in filenames:
            try:
                await bucket.delete(file_id(event_id, filename))
            except NoFile:
                continue
