"""What an attachment may be, decided from its bytes, and what it may be called. Pure.

A unit attaches the signed scan of its report: PDF, DOCX, XLSX, JPEG or PNG. The type is read
from the content, never from the name or the declared ``Content-Type``: a PNG called
``bao-cao.pdf`` is a PNG, and an executable called ``bao-cao.pdf`` is refused. DOCX and XLSX are
both ZIP files; which one (if either) is read from the ZIP's central directory, at the end of the
file, so :class:`ContentCheck` keeps the last bytes while the upload streams by.

The name is only a label for people: :func:`safe_filename` keeps the last path segment, in NFC,
without control or separator characters, with the extension of the type found, never empty.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import struct
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from contracts.events import AttachmentRef


class MediaType(StrEnum):
    PDF = "application/pdf"
    DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    JPEG = "image/jpeg"
    PNG = "image/png"

    @property
    def extension(self) -> str:
        return EXTENSIONS[self][0]

    @property
    def label(self) -> str:
        return self.name


EXTENSIONS: dict[MediaType, tuple[str, ...]] = {
    MediaType.PDF: (".pdf",),
    MediaType.DOCX: (".docx",),
    MediaType.XLSX: (".xlsx",),
    MediaType.JPEG: (".jpg", ".jpeg"),
    MediaType.PNG: (".png",),
}
"""The canonical extension first; the others are kept when a name already has them."""

ALLOWED_TEXT = "PDF, DOCX, XLSX, JPEG hoặc PNG"


class UnsupportedFileType(Exception):
    """The content is none of the allowed types (whatever its name says)."""

    code = "unsupported_file_type"

    def __init__(self, why: str = "") -> None:
        detail = f" ({why})" if why else ""
        super().__init__(
            f"Chỉ nhận tệp {ALLOWED_TEXT}; nội dung tệp gửi lên không thuộc các loại này{detail}. "
            "Loại tệp được xác định theo nội dung, không theo tên hay đuôi tệp."
        )


class MismatchedFileType(UnsupportedFileType):
    """The name claims one allowed type and the content is another (a PNG named ``.pdf``)."""

    def __init__(self, found: str, claimed: MediaType, filename: str) -> None:
        Exception.__init__(
            self,
            f"Tên tệp “{filename}” cho biết đây là tệp {claimed.label} nhưng nội dung là "
            f"{found}; vui lòng gửi đúng tệp (loại tệp được xác định theo nội dung).",
        )
        self.found, self.claimed = found, claimed


class EmptyFile(Exception):
    """The upload had no bytes."""

    code = "empty_file"

    def __init__(self) -> None:
        super().__init__("Tệp đính kèm không có nội dung.")


# --- the type, from the bytes -------------------------------------------------------------

HEAD_BYTES = 8
"""Enough for every signature we read at the start (PNG's is the longest)."""
TAIL_BYTES = 1024 * 1024
"""Kept from the end of a ZIP: its end record (with a comment of at most 64 KiB) and its central
directory must fit, which they do for any office document of our sizes."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sniff_head(head: bytes) -> MediaType | None:
    """The type the first bytes prove, None for a ZIP (which needs its end to tell), or
    :class:`UnsupportedFileType`."""
    if head.startswith(b"%PDF-"):
        return MediaType.PDF
    if head.startswith(_PNG_SIGNATURE):
        return MediaType.PNG
    if head.startswith(b"\xff\xd8\xff"):
        return MediaType.JPEG
    if head.startswith(b"PK\x03\x04"):
        return None
    raise UnsupportedFileType()


_EOCD = b"PK\x05\x06"
_EOCD_SIZE = 22
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_LOCATOR_SIZE = 20
_ZIP64_EOCD = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_CENTRAL_SIZE = 46


def zip_entry_names(tail: bytes) -> list[str]:
    """The names in a ZIP's central directory, read from the file's last bytes.

    The central directory ends where the end record (or the ZIP64 end record) begins, and the
    end record gives its size, so no absolute offset is needed: data prepended to the archive
    changes nothing. :class:`UnsupportedFileType` if the structure is not a valid ZIP's.
    """
    eocd = _find_eocd(tail)
    entries, cd_size = struct.unpack_from("<HI", tail, eocd + 10)
    cd_end = eocd
    if entries == 0xFFFF or cd_size == 0xFFFFFFFF:
        locator = eocd - _ZIP64_LOCATOR_SIZE
        if locator < 0 or tail[locator : locator + 4] != _ZIP64_LOCATOR:
            raise UnsupportedFileType("tệp ZIP hỏng")
        record = _zip64_record(tail, locator)
        entries, cd_size = struct.unpack_from("<QQ", tail, record + 32)
        cd_end = record
    start = cd_end - cd_size
    if start < 0:
        raise UnsupportedFileType("danh mục tệp ZIP quá lớn")
    names: list[str] = []
    at = start
    for _ in range(entries):
        if at + _CENTRAL_SIZE > cd_end or tail[at : at + 4] != _CENTRAL:
            raise UnsupportedFileType("tệp ZIP hỏng")
        flags = struct.unpack_from("<H", tail, at + 8)[0]
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", tail, at + 28)
        raw = tail[at + _CENTRAL_SIZE : at + _CENTRAL_SIZE + name_len]
        names.append(raw.decode("utf-8" if flags & 0x800 else "cp437", errors="replace"))
        at += _CENTRAL_SIZE + name_len + extra_len + comment_len
    if at > cd_end:
        raise UnsupportedFileType("tệp ZIP hỏng")
    return names


def _find_eocd(tail: bytes) -> int:
    """Where the end record starts: the last signature whose comment reaches the end."""
    at = tail.rfind(_EOCD)
    while at >= 0:
        if at + _EOCD_SIZE <= len(tail):
            comment_len = struct.unpack_from("<H", tail, at + 20)[0]
            if at + _EOCD_SIZE + comment_len == len(tail):
                return at
        at = tail.rfind(_EOCD, 0, at)
    raise UnsupportedFileType("không tìm thấy phần kết của tệp ZIP")


def _zip64_record(tail: bytes, locator: int) -> int:
    """The ZIP64 end record sits right before its locator (its own size is in it)."""
    # The locator gives an absolute offset; scan back for the record instead (see above).
    at = tail.rfind(_ZIP64_EOCD, 0, locator)
    if at < 0 or at + 56 > locator:
        raise UnsupportedFileType("tệp ZIP hỏng")
    return at


def office_type(names: list[str]) -> MediaType:
    """DOCX or XLSX from an OOXML package's entry names; any other ZIP is refused."""
    if "[Content_Types].xml" not in names:
        raise UnsupportedFileType("tệp ZIP không phải văn bản Word hay bảng tính Excel")
    word = any(n.startswith("word/") for n in names)
    excel = any(n.startswith("xl/") for n in names)
    if any(n.rsplit("/", 1)[-1].lower() == "vbaproject.bin" for n in names):
        raise UnsupportedFileType("tệp có chứa macro")
    if word and not excel:
        return MediaType.DOCX
    if excel and not word:
        return MediaType.XLSX
    raise UnsupportedFileType("tệp ZIP không phải văn bản Word hay bảng tính Excel")


_ZIPPED = {MediaType.DOCX, MediaType.XLSX}


class ContentCheck:
    """Watches an upload's bytes go by: refuses a bad start at once, tells the type at the end,
    and counts size and SHA-256 on the way (memory: at most ``TAIL_BYTES``)."""

    def __init__(self, filename: str | None = None) -> None:
        """``filename``: as the client named the file; a name with the extension of one
        allowed type and content of another is refused (:class:`MismatchedFileType`)."""
        self._filename = filename or ""
        self._claimed = claimed_type(filename)
        self._head = b""
        self._decided = False
        self._known: MediaType | None = None
        self._tail = bytearray()
        self._sha256 = hashlib.sha256()
        self.size = 0

    def feed(self, chunk: bytes) -> None:
        """Take the next bytes; :class:`UnsupportedFileType` as soon as the start is known bad."""
        if not chunk:
            return
        self.size += len(chunk)
        self._sha256.update(chunk)
        if self._known is None:  # not decided yet, or a ZIP: its end will be needed
            self._tail += chunk
            if len(self._tail) > TAIL_BYTES:
                del self._tail[: len(self._tail) - TAIL_BYTES]
        if not self._decided:
            self._head += chunk[: HEAD_BYTES - len(self._head)]
            if len(self._head) >= HEAD_BYTES:
                self._decide_head()

    def _decide_head(self) -> None:
        self._known = sniff_head(self._head)
        self._decided = True
        if self._known is not None:
            self._tail = bytearray()
            self._agrees(self._known)
        elif self._claimed is not None and self._claimed not in _ZIPPED:
            raise MismatchedFileType("tệp nén ZIP", self._claimed, self._filename)

    def _agrees(self, found: MediaType) -> MediaType:
        if self._claimed is not None and self._claimed is not found:
            raise MismatchedFileType(found.label, self._claimed, self._filename)
        return found

    def finish(self) -> MediaType:
        """The type of the whole content; :class:`EmptyFile` or :class:`UnsupportedFileType`."""
        if self.size == 0:
            raise EmptyFile()
        if not self._decided:
            self._decide_head()  # a file shorter than the longest signature
        if self._known is not None:
            return self._known
        return self._agrees(office_type(zip_entry_names(bytes(self._tail))))

    @property
    def sha256(self) -> str:
        return self._sha256.hexdigest()


def media_type_of(content: bytes, filename: str | None = None) -> MediaType:
    """The type of a whole content in memory (tests, small files)."""
    check = ContentCheck(filename)
    check.feed(content)
    return check.finish()


# --- the name -----------------------------------------------------------------------------

MAX_FILENAME_CHARS = 120
"""Long enough for a descriptive Vietnamese title; short enough for any file system (each
Vietnamese letter is 2-3 bytes in UTF-8, and 255 bytes is the usual limit)."""
_FORBIDDEN_NAME_CHARS = set('<>:"/\\|?*')
"""Separators and the characters Windows refuses in a name."""
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
"""Control and format characters (incl. bidirectional overrides), unassigned, line breaks."""


def safe_filename(raw: str | None, media_type: MediaType) -> str:
    """A name to show and to offer on download: no path, no control character, NFC, at most
    ``MAX_FILENAME_CHARS`` characters, ending with an extension of ``media_type``."""
    name = unicodedata.normalize("NFC", raw or "")
    # The last segment of a POSIX or Windows path (``C:\\...``, ``\\\\server\\share``).
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        " " if c.isspace() else c  # tabs, line breaks, no-break spaces: one plain space
        for c in name
        if c.isspace()
        or (c not in _FORBIDDEN_NAME_CHARS and unicodedata.category(c) not in _UNSAFE_CATEGORIES)
    )
    name = " ".join(name.split()).strip(" .")  # no leading dot (hidden), no trailing dot
    stem, extension = _split_extension(name)
    extension = extension.lower()
    if extension not in EXTENSIONS[media_type]:
        # ``x.pdf`` that is a PNG becomes ``x.png``, ``x.exe`` that is a PDF ``x.pdf``.
        extension = media_type.extension
    stem = stem[: MAX_FILENAME_CHARS - len(extension)].rstrip(" .")
    if stem.split(".")[0].upper() in _WINDOWS_RESERVED:
        stem = "_" + stem
    return (stem or "tep-dinh-kem") + extension


_EXTENSION = re.compile(r"\.(?=[A-Za-z0-9]{0,4}[A-Za-z])[A-Za-z0-9]{1,5}$")
"""What reads as an extension: up to five letters and digits, one a letter (``v1.2`` and
``bao-cao.2026`` have none)."""
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)
}


def claimed_type(raw: str | None) -> MediaType | None:
    """The allowed type a client's file name claims by its extension, if any."""
    name = unicodedata.normalize("NFC", raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    extension = _split_extension(name.strip(" .\t\r\n"))[1].lower()
    return next((t for t, known in EXTENSIONS.items() if extension in known), None)


def _split_extension(name: str) -> tuple[str, str]:
    found = _EXTENSION.search(name)
    if found is None or found.start() == 0:
        return name, ""
    return name[: found.start()], found.group()


# --- a stored attachment ------------------------------------------------------------------


class AttachmentState(StrEnum):
    DRAFT = "draft"
    """Uploaded, not yet part of a filed report: the unit may delete it."""
    SUBMITTED = "submitted"
    """Part of a filed report: kept as filed."""


@dataclass(frozen=True)
class Attachment:
    attachment_id: str
    period_id: str
    unit_id: str
    filename: str
    media_type: str
    size: int
    sha256: str
    uploaded_by: str
    uploaded_at: dt.datetime
    state: AttachmentState

    def ref(self) -> AttachmentRef:
        """What an event carries: identity, not bytes."""
        return AttachmentRef(
            attachment_id=self.attachment_id,
            filename=self.filename,
            media_type=self.media_type,
            size=self.size,
            sha256=self.sha256,
        )
