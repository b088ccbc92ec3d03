"""Attachments: the type read from the bytes, the name made safe, the form read as it streams."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.submissions.attachments import (
    EXTENSIONS,
    MAX_FILENAME_CHARS,
    ContentCheck,
    EmptyFile,
    MediaType,
    MismatchedFileType,
    UnsupportedFileType,
    media_type_of,
    safe_filename,
    zip_entry_names,
)
from services.submissions.attachments_api import (
    FormError,
    FormStream,
    MalformedForm,
    ascii_filename,
    content_disposition,
)
from tests.support.attachments import (
    as_zip64,
    docx_file,
    field_part,
    form,
    jpeg,
    pdf,
    png,
    xlsx_file,
    zip_of,
)

pytestmark = pytest.mark.unit

OOXML = ["[Content_Types].xml", "_rels/.rels"]


# --- the type, from the bytes -------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (pdf(), MediaType.PDF),
        (png(), MediaType.PNG),
        (jpeg(), MediaType.JPEG),
        (docx_file(), MediaType.DOCX),
        (xlsx_file(), MediaType.XLSX),
    ],
    ids=["pdf", "png", "jpeg", "docx", "xlsx"],
)
def test_each_allowed_type_is_recognised_by_its_content(
    content: bytes, expected: MediaType
) -> None:
    assert media_type_of(content) is expected


@pytest.mark.parametrize("chunk", [1, 3, 7, 4096])
def test_the_type_is_the_same_however_the_bytes_arrive(chunk: int) -> None:
    for content, expected in ((docx_file(), MediaType.DOCX), (png(), MediaType.PNG)):
        check = ContentCheck()
        for start in range(0, len(content), chunk):
            check.feed(content[start : start + chunk])
        assert check.finish() is expected
        assert check.size == len(content)


def test_size_and_sha256_are_counted_on_the_way() -> None:
    import hashlib

    content = pdf() * 3
    check = ContentCheck()
    for start in range(0, len(content), 100):
        check.feed(content[start : start + 100])
    assert check.finish() is MediaType.PDF
    assert check.sha256 == hashlib.sha256(content).hexdigest()
    assert check.size == len(content)


@pytest.mark.parametrize(
    "content",
    [
        b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 100,  # a Windows executable
        b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 100,
        b"<html><script>alert(1)</script></html>",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>',
        b"GIF89a\x01\x00\x01\x00",
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100,  # old .doc / encrypted office file
        b"Rar!\x1a\x07\x00",
        b"  %PDF-1.4 (not at the start)",
        b"%PD",
    ],
    ids=["exe", "elf", "html", "svg", "gif", "cfb", "rar", "late-pdf", "short"],
)
def test_anything_else_is_refused(content: bytes) -> None:
    with pytest.raises(UnsupportedFileType) as refused:
        media_type_of(content)
    assert "PDF, DOCX, XLSX, JPEG hoặc PNG" in str(refused.value)
    assert refused.value.code == "unsupported_file_type"


def test_a_bad_start_is_refused_at_once_before_the_rest_arrives() -> None:
    check = ContentCheck()
    with pytest.raises(UnsupportedFileType):
        check.feed(b"MZ\x90\x00\x03\x00\x00\x00")


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(EmptyFile):
        ContentCheck().finish()


@pytest.mark.parametrize(
    "names",
    [
        ["hello.txt", "bin/run.sh"],  # a plain ZIP
        ["[Content_Types].xml", "ppt/presentation.xml"],  # PowerPoint
        ["word/document.xml"],  # no content types: not a package
        [*OOXML, "word/document.xml", "xl/workbook.xml"],  # both: which?
        [*OOXML, "word/document.xml", "word/vbaProject.bin"],  # .docm, with macros
        [*OOXML, "xl/workbook.xml", "xl/vbaProject.bin"],  # .xlsm
    ],
    ids=["zip", "pptx", "no-content-types", "both", "docm", "xlsm"],
)
def test_a_zip_that_is_not_a_plain_docx_or_xlsx_is_refused(names: list[str]) -> None:
    with pytest.raises(UnsupportedFileType):
        media_type_of(zip_of(names))


def test_docx_and_xlsx_are_told_apart_by_the_central_directory() -> None:
    assert media_type_of(zip_of([*OOXML, "word/document.xml"])) is MediaType.DOCX
    assert media_type_of(zip_of([*OOXML, "xl/workbook.xml"])) is MediaType.XLSX


def test_a_zip_comment_prepended_data_and_zip64_records_are_understood() -> None:
    package = zip_of([*OOXML, "word/document.xml"], comment=b"PK\x05\x06 in a comment")
    assert media_type_of(package) is MediaType.DOCX
    assert zip_entry_names(as_zip64(docx_file()))[0] == "[Content_Types].xml"
    assert media_type_of(as_zip64(xlsx_file())) is MediaType.XLSX


@pytest.mark.parametrize(
    "content",
    [
        b"PK\x03\x04" + b"\x00" * 50,  # a local header, then nothing
        zip_of([*OOXML, "word/document.xml"])[:-30],  # cut short
        b"PK\x03\x04" + b"\x00" * 50 + b"PK\x05\x06" + b"\x00\x00\x00\x00\xff\xff" + b"\x00" * 12,
    ],
    ids=["no-end", "truncated", "lying-end-record"],
)
def test_a_broken_zip_is_refused_not_crashed_on(content: bytes) -> None:
    with pytest.raises(UnsupportedFileType):
        media_type_of(content)


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        (png(), "scan.pdf"),
        (pdf(), "ảnh.PNG"),
        (jpeg(), "bang-tinh.xlsx"),
        (docx_file(), "bao-cao.pdf"),
        (docx_file(), "bao-cao.xlsx"),
        (xlsx_file(), "C:\\Users\\x\\bao-cao.docx"),
    ],
    ids=["png-as-pdf", "pdf-as-png", "jpeg-as-xlsx", "docx-as-pdf", "docx-as-xlsx", "xlsx-as-docx"],
)
def test_content_that_contradicts_its_name_is_refused(content: bytes, filename: str) -> None:
    with pytest.raises(MismatchedFileType) as refused:
        media_type_of(content, filename)
    assert refused.value.code == "unsupported_file_type"
    assert "theo nội dung" in str(refused.value)


def test_a_pdf_named_png_is_refused_from_its_first_bytes() -> None:
    check = ContentCheck("scan.png")
    with pytest.raises(MismatchedFileType):
        check.feed(pdf()[:8])


@pytest.mark.parametrize(
    ("content", "filename", "expected"),
    [
        (pdf(), "scan", MediaType.PDF),
        (pdf(), "virus.exe", MediaType.PDF),
        (pdf(), None, MediaType.PDF),
        (jpeg(), "ảnh.JPG", MediaType.JPEG),
        (jpeg(), "ảnh.jpeg", MediaType.JPEG),
        (xlsx_file(), "số liệu.XLSX", MediaType.XLSX),
    ],
)
def test_a_name_that_claims_no_type_or_the_right_one_is_fine(
    content: bytes, filename: str | None, expected: MediaType
) -> None:
    assert media_type_of(content, filename) is expected


# --- the name -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "media_type", "expected"),
    [
        ("../../etc/passwd.pdf", MediaType.PDF, "passwd.pdf"),
        ("..\\..\\Windows\\System32\\evil.pdf", MediaType.PDF, "evil.pdf"),
        ("C:\\Users\\Hà\\Desktop\\Báo cáo.PDF", MediaType.PDF, "Báo cáo.pdf"),
        ("\\\\server\\share\\scan.png", MediaType.PNG, "scan.png"),
        ("/etc/", MediaType.PDF, "tep-dinh-kem.pdf"),
        ("a\x00b\r\nc\x1b[31m.pdf", MediaType.PDF, "ab c[31m.pdf"),
        ("bao\u202egpj.pdf", MediaType.PDF, "baogpj.pdf"),  # right-to-left override
        ('q"u<o>t|e?s*:.pdf', MediaType.PDF, "quotes.pdf"),
        ("...", MediaType.PDF, "tep-dinh-kem.pdf"),
        ("", MediaType.XLSX, "tep-dinh-kem.xlsx"),
        (None, MediaType.JPEG, "tep-dinh-kem.jpg"),
        (".htaccess", MediaType.PDF, "htaccess.pdf"),
        ("scan.pdf", MediaType.PNG, "scan.png"),  # a PNG named .pdf
        ("virus.exe", MediaType.PDF, "virus.pdf"),
        ("ảnh.JPEG", MediaType.JPEG, "ảnh.jpeg"),
        ("bao-cao.2026", MediaType.DOCX, "bao-cao.2026.docx"),
        ("Báo cáo   quý\tIII .docx", MediaType.DOCX, "Báo cáo quý III.docx"),
        ("CON.pdf", MediaType.PDF, "_CON.pdf"),
    ],
)
def test_names_are_neutralised(raw: str | None, media_type: MediaType, expected: str) -> None:
    assert safe_filename(raw, media_type) == expected


def test_vietnamese_is_kept_and_composed_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Báo cáo tổng hợp Nghị quyết 35 – Đợt 1.pdf")
    name = safe_filename(decomposed, MediaType.PDF)
    assert name == unicodedata.normalize("NFC", "Báo cáo tổng hợp Nghị quyết 35 – Đợt 1.pdf")
    assert unicodedata.is_normalized("NFC", name)


def test_a_very_long_name_is_cut_keeping_the_extension() -> None:
    name = safe_filename("Báo cáo " * 200 + ".xlsx", MediaType.XLSX)
    assert len(name) <= MAX_FILENAME_CHARS
    assert name.endswith(".xlsx")
    assert name.startswith("Báo cáo Báo cáo")
    assert not name[: -len(".xlsx")].endswith(" ")


@given(st.text(max_size=400), st.sampled_from(list(MediaType)))
def test_any_name_comes_out_safe(raw: str, media_type: MediaType) -> None:
    name = safe_filename(raw, media_type)
    assert name and len(name) <= MAX_FILENAME_CHARS
    assert not set(name) & set('/\\<>:"|?*')
    assert all(unicodedata.category(c)[0] != "C" for c in name)
    assert unicodedata.is_normalized("NFC", name)
    assert not name.startswith((".", " "))
    assert any(name.endswith(e) for e in EXTENSIONS[media_type])


# --- Content-Disposition on download ------------------------------------------------------


def test_the_download_header_has_an_ascii_name_and_the_exact_one() -> None:
    header = content_disposition("Báo cáo đợt 1 (bản ký).pdf")
    assert header == (
        'attachment; filename="Bao cao dot 1 (ban ky).pdf"; '
        "filename*=UTF-8''B%C3%A1o%20c%C3%A1o%20%C4%91%E1%BB%A3t%201%20%28b%E1%BA%A3n%20k%C3%BD%29.pdf"
    )
    header.encode("latin-1")  # a header value must be


def test_nothing_in_a_name_breaks_out_of_the_header() -> None:
    header = content_disposition('a"; filename=evil.exe; x="\\.pdf')
    assert header.count('"') == 2
    assert ascii_filename("漢字.pdf") == "__.pdf"


# --- the form, as it streams --------------------------------------------------------------


async def pieces(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def read_file(body: bytes, boundary: str, size: int) -> tuple[str | None, bytes]:
    stream = FormStream(boundary.encode(), pieces(body, size))
    filename = await stream.find_file("file")
    data = b"".join([piece async for piece in stream.data()])
    await stream.finish("file")
    return filename, data


@pytest.mark.parametrize("size", [1, 5, 64, 65536])
async def test_the_file_comes_out_whole_however_the_body_is_cut(size: int) -> None:
    content = png(20, 20) + b"\r\n--almost-a-boundary\r\n" + png()
    body, content_type = form(content, "Ảnh chụp.png", boundary="b0undary")
    assert content_type == "multipart/form-data; boundary=b0undary"
    filename, data = await read_file(body, "b0undary", size)
    assert filename == "Ảnh chụp.png"
    assert data == content


async def test_other_fields_are_skipped() -> None:
    extra = field_part("csrf_token", "abc", "bd")
    body, _ = form(pdf(), extra=extra, boundary="bd")
    before = field_part("note", "ghi chú", "bd")
    filename, data = await read_file(before + body, "bd", 10)
    assert (filename, data) == ("bao-cao.pdf", pdf())


async def test_a_form_without_the_file_field_is_refused() -> None:
    body, _ = form(pdf(), field="tep", boundary="bd")
    with pytest.raises(FormError):
        await read_file(body, "bd", 100)


async def test_a_cut_short_form_is_refused() -> None:
    body, _ = form(pdf(), boundary="bd")
    with pytest.raises(MalformedForm):
        await read_file(body[:-20], "bd", 100)


async def test_a_body_that_is_not_multipart_is_malformed() -> None:
    with pytest.raises(MalformedForm):
        await read_file(b"--bd\r\nno headers here at all" * 300, "bd", 100)


async def test_a_second_file_is_refused() -> None:
    second = form(png(), boundary="bd")[0].removesuffix(b"--bd--\r\n")
    body, _ = form(pdf(), boundary="bd")
    with pytest.raises(FormError):
        await read_file(second + body, "bd", 100)
