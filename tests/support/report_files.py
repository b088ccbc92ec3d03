"""An in-memory stand-in for the consolidate service's report file store."""

from __future__ import annotations

from services.consolidate.documents import RenderedFile
from services.consolidate.files import FileStore, StoredFile, file_id


class MemoryFileStore(FileStore):
    def __init__(self) -> None:
        self.files: dict[tuple[str, str], StoredFile] = {}

    async def put(self, period_id: str, event_id: str, files: list[RenderedFile]) -> None:
        for f in files:
            self.files[(period_id, file_id(event_id, f.filename))] = StoredFile(
                f.filename, f.media_type, f.sha256, f.data
            )

    async def get(self, period_id: str, event_id: str, filename: str) -> StoredFile | None:
        return self.files.get((period_id, file_id(event_id, filename)))

    async def discard(self, period_id: str, event_id: str, filenames: list[str]) -> None:
        for filename in filenames:
            self.files.pop((period_id, file_id(event_id, filename)), None)
