"""A Mailpit of one test's or benchmark's own, with TLS (a self-signed pair made here) and,
when asked, SMTP authentication.

Bench P9 sends tens of thousands of mails: to the shared Mailpit (which keeps 500 messages and
prunes the oldest) it would push out the mail a test suite running at the same time is waiting
for. Its own instance offers STARTTLS (``--smtp-tls-cert``/``--smtp-tls-key``), where
reconnecting costs a TLS handshake, as it does against a real mail server. The notify tests use
the other modes a real relay asks for: STARTTLS required with a login, or TLS from the first
byte (port 465 style).
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from deploy.local.stack import MAILPIT_VERSION
from tests.support.launch import free_port


class MailpitDidNotStart(Exception):
    """The private Mailpit did not answer /readyz in time."""


@dataclass(frozen=True)
class Security:
    """What the private Mailpit asks of its clients (by default: STARTTLS offered only)."""

    require_starttls: bool = False
    implicit_tls: bool = False
    """TLS from the first byte, as on port 465 (Mailpit's ``--smtp-require-tls``)."""
    login: tuple[str, str] | None = None
    """(user, password) that SMTP AUTH must present; any other login is refused."""

    def flags(self, folder: Path) -> list[str]:
        flags = []
        if self.require_starttls:
            flags.append("--smtp-require-starttls")
        if self.implicit_tls:
            flags.append("--smtp-require-tls")
        if self.login is not None:
            users = folder / "smtp-users"
            users.write_text(f"{self.login[0]}:{self.login[1]}\n", encoding="utf-8")
            flags += ["--smtp-auth-file", str(users)]
        return flags


@dataclass(frozen=True)
class PrivateMailpit:
    smtp_port: int
    api: str
    cert: Path
    """The self-signed certificate, for the client to trust (its name is 127.0.0.1)."""

    def delete_all(self) -> None:
        with httpx.Client(base_url=self.api, timeout=120) as client:
            client.request("DELETE", "/api/v1/messages").raise_for_status()


def self_signed_pair(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1: RSA 2048, as most mail servers still present."""
    cert, key = folder / "smtp.crt", folder / "smtp.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@contextlib.contextmanager
def private_mailpit(
    bin_dir: Path, *, keep: int, log_dir: Path, security: Security = Security()
) -> Iterator[PrivateMailpit]:
    """Mailpit on free ports with TLS as ``security`` says and room for ``keep`` messages;
    stopped and its files removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="baocao-mailpit-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    smtp, http = free_port(), free_port()
    cert, key = self_signed_pair(folder)
    with (log_dir / "private-mailpit.log").open("ab") as log:
        process = subprocess.Popen(
            [
                str(bin_dir / f"mailpit-{MAILPIT_VERSION}"),
                "--smtp",
                f"127.0.0.1:{smtp}",
                "--listen",
                f"127.0.0.1:{http}",
                "--database",
                str(folder / "mailpit.db"),
                "--smtp-tls-cert",
                str(cert),
                "--smtp-tls-key",
                str(key),
                "--max",
                str(keep),
                "--smtp-disable-rdns",
                "--disable-version-check",
                *security.flags(folder),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            api = f"http://127.0.0.1:{http}"
            _wait_ready(api, process)
            yield PrivateMailpit(smtp, api, cert)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
            shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(api: str, process: subprocess.Popen[bytes], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise MailpitDidNotStart(f"mailpit exited with {process.returncode}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{api}/readyz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise MailpitDidNotStart(f"no answer from {api}/readyz in {seconds:.0f} s")
