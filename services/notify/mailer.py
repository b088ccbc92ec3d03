"""Sending e-mail over SMTP with aiosmtplib, and telling a retryable failure from a final one."""

from __future__ import annotations

import abc
import asyncio
import base64
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.header import Header
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr

import aiosmtplib
from pydantic import SecretStr

from services.notify.domain import Outgoing, html_of, one_line
from services.notify.sms_rules import Segments


class SendFailed(Exception):
    """The message was not accepted; ``permanent`` says whether trying again can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(abc.ABC):
    @abc.abstractmethod
    async def send(self, message: Outgoing) -> None:
        """Hand the message to the gateway or raise :class:`SendFailed`."""

    def segments_of(self, message: Outgoing) -> Segments | None:
        """The SMS segments ``message`` costs as this sender sends it; None but for SMS."""
        return None


def _phrase_words(text: str) -> list[str]:
    """``text`` as base64 encoded words of at most 75 characters, split at its spaces."""
    words: list[str] = []
    chunk = ""
    for word in text.split():
        candidate = f"{chunk} {word}" if chunk else word
        if chunk and _encoded_length(candidate) > 75:
            words.append(_encode_word(chunk))
            candidate = word
        chunk = candidate
    if chunk:
        words.append(_encode_word(chunk))
    return words


def _encoded_length(text: str) -> int:
    return len("=?utf-8?b??=") + 4 * -(-len(text.encode()) // 3)


def _encode_word(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode()).decode("ascii") + "?="


CRLF = "\r\n"


def message_id(notification_id: str) -> str:
    """The same for every attempt at one notification: a resend after a crash is recognisable."""
    return f"<{hashlib.sha256(notification_id.encode()).hexdigest()[:32]}@baocao>"


def wire_message(message: Outgoing, sender: str, now: dt.datetime | None = None) -> bytes:
    """The message as sent: multipart text + HTML, CRLF line ends, every line within 78.

    Written out here rather than by ``email.policy.default``, whose folding of a long
    non-ASCII subject (or display name) loses the space between two encoded words when
    Python's own strict parser or Mailpit decodes it ("2026 –Ủy"), and which spends about
    10 ms a message parsing the headers it is given back.

    - Subject (unstructured): :class:`email.header.Header` splits between characters and
      keeps every space inside an encoded word (the whitespace between words is dropped).
    - Display names (phrases): both parsers keep the whitespace between encoded words as
      one space, so a name is split at its spaces, one or more whole words per encoded word.
    """
    name, address = parseaddr(sender)
    mid = message_id(message.notification_id)
    digest = mid.strip("<>").removesuffix("@baocao")
    boundary = f"=_baocao_{digest}"
    headers = [
        _address_header("From", name, address),
        _address_header("To", message.recipient_name, message.recipient),
    ]
    if message.reply_to:
        headers.append(_address_header("Reply-To", message.reply_to_name, message.reply_to))
    subject = Header(one_line(message.subject), "utf-8", header_name="Subject", maxlinelen=76)
    moment = (now or dt.datetime.now(dt.UTC)).timestamp()
    headers += [
        # 76: a continuation line is one space and one encoded word of at most 75
        f"Subject: {subject.encode(linesep=CRLF)}",
        f"Date: {formatdate(moment, localtime=False, usegmt=True)}",
        f"Message-ID: {mid}",
        f"X-Baocao-Notification: {digest}",
        # RFC 3834: no vacation responder or auto-reply should answer this.
        "Auto-Submitted: auto-generated",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative;{CRLF} boundary="{boundary}"',
    ]
    parts = [
        _part("text/plain", message.text),
        _part("text/html", html_of(message.subject, message.text)),
    ]
    body = "".join(f"--{boundary}{CRLF}{part}" for part in parts) + f"--{boundary}--{CRLF}"
    return (CRLF.join(headers) + CRLF + CRLF + body).encode("ascii")


def build_email(message: Outgoing, sender: str, now: dt.datetime | None = None) -> EmailMessage:
    """:func:`wire_message` as a receiver parses it (tests and tools)."""
    parsed = message_from_bytes(wire_message(message, sender, now), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _part(media_type: str, text: str) -> str:
    encoded = base64.encodebytes(text.encode()).decode("ascii").replace("\n", CRLF)
    return (
        f'Content-Type: {media_type}; charset="utf-8"{CRLF}'
        f"Content-Transfer-Encoding: base64{CRLF}{CRLF}{encoded}"
    )


def _address_header(field: str, display_name: str, address: str) -> str:
    address, display_name = one_line(address).strip(), one_line(display_name).strip()
    if not display_name:
        return f"{field}: {address}"
    if display_name.isascii():
        tokens = formataddr((display_name, address)).split(" ")
    else:
        tokens = [*_phrase_words(display_name), f"<{address}>"]
    lines, line = [], f"{field}:"
    for token in tokens:
        if len(line) + 1 + len(token) > 78 and line != f"{field}:":
            lines.append(line)
            line = ""
        line += " " + token
    lines.append(line)
    return CRLF.join(lines)


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None = None
    password: SecretStr | None = None
    """A secret: its repr is stars, so a logged config does not show it."""
    starttls: bool = False
    implicit_tls: bool = False
    validate_certs: bool = True
    cert_bundle: str | None = None
    timeout: float = 20.0


@dataclass
class _Session:
    client: aiosmtplib.SMTP
    sent: int = 0


class SmtpMailer(Mailer):
    """A bounded pool of reused SMTP sessions: reconnecting per message costs a TCP (and TLS)
    handshake each time. A session is retired after ``per_session`` messages, on any error
    (a 421/452 answer, a broken connection, a timeout), and a send that failed on a reused
    session is tried once more on a fresh one: a poisoned session fails no other send."""

    def __init__(
        self,
        config: SmtpConfig,
        *,
        sender: str,
        pool_size: int = 4,
        per_session: int = 100,
        on_session: Callable[[str], None] | None = None,
    ) -> None:
        self._config, self._sender = config, sender
        self._envelope_from = parseaddr(sender)[1]
        self._per_session = per_session
        self._slots = asyncio.Semaphore(pool_size)
        self._idle: list[_Session] = []
        self._on_session = on_session or (lambda _event: None)

    async def send(self, message: Outgoing) -> None:
        raw = wire_message(message, self._sender)
        async with self._slots:
            session = self._idle.pop() if self._idle else None
            if session is not None:
                try:
                    await self._send_on(session, message.recipient, raw)
                    return
                except SendFailed as error:
                    if error.permanent:
                        raise
                    # A reused session may have gone stale or hit its server's per-session
                    # limit: the message deserves one fresh connection before it waits.
                    self._on_session("rotated")
            session = await self._connect()
            await self._send_on(session, message.recipient, raw)

    async def close(self) -> None:
        """Say QUIT on every idle session (at shutdown)."""
        sessions, self._idle = self._idle, []
        await asyncio.gather(*(self._retire(s) for s in sessions))

    async def _connect(self) -> _Session:
        c = self._config
        client = aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            username=c.username,
            password=c.password.get_secret_value() if c.password else None,
            use_tls=c.implicit_tls,
            start_tls=c.starttls and not c.implicit_tls,
            validate_certs=c.validate_certs,
            cert_bundle=c.cert_bundle,
            timeout=c.timeout,
        )
        try:
            await client.connect()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            client.close()
            raise _classified(error) from error
        self._on_session("opened")
        return _Session(client)

    async def _send_on(self, session: _Session, recipient: str, raw: bytes) -> None:
        try:
            await session.client.sendmail(
                self._envelope_from, [recipient], raw, timeout=self._config.timeout
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            await self._retire(session)
            raise _classified(error) from error
        session.sent += 1
        if session.sent >= self._per_session:
            await self._retire(session)
        else:
            self._idle.append(session)

    async def _retire(self, session: _Session) -> None:
        self._on_session("closed")
        try:
            if session.client.is_connected:
                await asyncio.wait_for(session.client.quit(), self._config.timeout)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            pass  # leaving anyway: the session is dropped whatever the server says
        finally:
            session.client.close()


def _classified(error: Exception) -> SendFailed:
    """5xx is the server's final word; 4xx, timeouts and lost connections may pass later."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in error.recipients]
        permanent = bool(codes) and all(500 <= code < 600 for code in codes)
        return SendFailed(f"recipient refused: {error}", permanent=permanent)
    if isinstance(error, aiosmtplib.SMTPResponseException):
        return SendFailed(f"{error.code} {error.message}", permanent=500 <= error.code < 600)
    return SendFailed(f"{type(error).__name__}: {error}", permanent=False)
