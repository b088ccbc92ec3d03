"""Small real files of each allowed type, made here, and multipart bodies that carry them."""

from __future__ import annotations

import io
import struct
import uuid
import zipfile
import zlib
from collections.abc import AsyncIterator, Iterable

import docx
import openpyxl


def pdf(text: str = "Báo cáo") -> bytes:
    """A one-page PDF with a cross-reference table that a reader opens."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text.encode('ascii', 'replace').decode()}) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream.encode()),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()


def png(width: int = 2, height: int = 2) -> bytes:
    """A valid RGB PNG of ``width`` x ``height`` red pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def jpeg() -> bytes:
    """The start of a JFIF file (SOI, APP0) and its end: what a JPEG is recognised by."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0 + b"\xff\xd9"


def docx_file(text: str = "Báo cáo kết quả thực hiện") -> bytes:
    """A Word document written by python-docx."""
    document = docx.Document()
    document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def xlsx_file() -> bytes:
    """A workbook written by openpyxl."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Chỉ tiêu", "Giá trị"])
    sheet.append(["Số buổi tuyên truyền", 4])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def zip_of(names: Iterable[str], *, comment: bytes = b"") -> bytes:
    """A ZIP with these (small) entries."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in names:
            archive.writestr(name, f"<x>{name}</x>")
        archive.comment = comment
    return out.getvalue()


def as_zip64(data: bytes) -> bytes:
    """The same ZIP with a ZIP64 end record, as some writers make even for small files."""
    eocd = data.rfind(b"PK\x05\x06")
    entries, cd_size, cd_offset = struct.unpack_from("<HII", data, eocd + 10)
    comment = data[eocd + 22 :]
    record = struct.pack(
        "<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, entries, entries, cd_size, cd_offset
    )
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, eocd, 1)
    end = struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment)
    )
    return data[:eocd] + record + locator + end + comment


# --- multipart/form-data ------------------------------------------------------------------


def form(
    content: bytes,
    filename: str = "bao-cao.pdf",
    *,
    field: str = "file",
    extra: bytes = b"",
    boundary: str | None = None,
) -> tuple[bytes, str]:
    """A form with one file part (the name sent raw in UTF-8, as browsers do); the body and
    its Content-Type."""
    boundary = boundary or uuid.uuid4().hex
    escaped = filename.replace("\\", "\\\\").replace('"', '\\"')
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="{field}"; filename="{escaped}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + content
        + f"\r\n{extra.decode()}--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def field_part(name: str, value: str, boundary: str) -> bytes:
    """A plain field, to put before the closing boundary (``form(extra=...)``)."""
    return (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


class Pulled:
    """A request body handed out in chunks, counting what the server pulled."""

    def __init__(self, body: bytes, chunk: int = 64 * 1024) -> None:
        self.body = body
        self.chunk = chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.body), self.chunk):
            piece = self.body[start : start + self.chunk]
            self.pulled += len(piece)
            yield piece
