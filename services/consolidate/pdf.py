"""DOCX to PDF with LibreOffice, where it is installed (Debian: libreoffice-writer-nogui).

Without LibreOffice the DOCX and XLSX are still made and the report says the PDF is missing;
nothing else depends on it. Each conversion gets its own profile folder: two ``soffice``
processes sharing one profile wait on each other's lock, or fail.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/pdf"
TIMEOUT_SECONDS = 120.0


class PdfUnavailable(Exception):
    """LibreOffice is not installed, or the conversion failed."""


def soffice() -> str | None:
    return shutil.which("soffice") or shutil.which("libreoffice")


async def convert(docx: bytes, *, limit_seconds: float = TIMEOUT_SECONDS) -> bytes:
    program = soffice()
    if program is None:
        raise PdfUnavailable("LibreOffice (soffice) is not installed")
    with tempfile.TemporaryDirectory(prefix="baocao-pdf-") as folder:
        work = Path(folder)
        source = work / "bao-cao.docx"
        source.write_bytes(docx)
        process = await asyncio.create_subprocess_exec(
            program,
            f"-env:UserInstallation=file://{work / 'profile'}",
            "--headless",
            "--convert-to",
            "pdf",
            "--outdir",
            str(work),
            str(source),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={"HOME": str(work), "PATH": "/usr/bin:/bin"},
        )
        try:
            _, err = await asyncio.wait_for(process.communicate(), limit_seconds)
        except TimeoutError as error:
            process.kill()
            await process.wait()
            raise PdfUnavailable(f"LibreOffice took longer than {limit_seconds:.0f} s") from error
        target = work / "bao-cao.pdf"
        if process.returncode != 0 or not target.exists():
            raise PdfUnavailable(
                f"LibreOffice failed ({process.returncode}): {err.decode()[-300:]}"
            )
        return target.read_bytes()
