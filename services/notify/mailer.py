"""Sending e-mail over SMTP with aiosmtplib, and telling a retryable failure from a final one."""

from __future__ import annotations

import abc
import base64
import datetime as dt
import hashlib
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import formatdate, parseaddr

import aiosmtplib

from services.notify.domain import Outgoing, html_of


class SendFailed(Exception):
    """The message was not accepted; ``permanent`` says whether trying again can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(abc.ABC):
    @abc.abstractmethod
    async def send(self, message: Outgoing) -> None:
        """Hand the message to the gateway or raise :class:`SendFailed`."""


class _WirePolicy(EmailPolicy):
    """``policy.SMTP`` with non-ASCII Subject and display names folded so that Python's
    strict parser (``policy.default``) and Mailpit decode them exactly; ``policy.default``'s
    own folding loses the space between two encoded words ("2026 –Ủy"), in subjects and in
    long display names alike. Encoded words stay within RFC 2047's 75 characters and header
    lines within 78.

    - Subject (unstructured): :class:`email.header.Header` splits between characters and
      keeps every space inside an encoded word; the whitespace between words is dropped.
    - Display names (phrases): both parsers keep the whitespace between encoded words as
      one space, so a name is split at its spaces, one or more whole words per encoded word.
    """

    def fold(self, name: str, value: str) -> str:
        folded = self._encoded(name, value)
        return folded if folded is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: str) -> bytes:
        folded = self._encoded(name, value)
        if folded is None:
            return super().fold_binary(name, value)
        return folded.encode("ascii")

    def _encoded(self, name: str, value: str) -> str | None:
        key = name.lower()
        if key == "subject" and not str(value).isascii():
            # 76: a continuation line is one space and one encoded word of at most 75
            header = Header(str(value), "utf-8", header_name=name, maxlinelen=76)
            return f"{name}: {header.encode(linesep=self.linesep)}{self.linesep}"
        addresses = getattr(value, "addresses", None)
        if key in _ADDRESS_HEADERS and addresses and not str(value).isascii():
            tokens: list[str] = []
            for a in addresses:
                if tokens:
                    tokens[-1] += ","
                tokens += [*_phrase_words(a.display_name), f"<{a.addr_spec}>"]
            return self._lines(f"{name}:", tokens)
        return None

    def _lines(self, start: str, tokens: list[str]) -> str:
        lines, line = [], start
        for token in tokens:
            if len(line) + 1 + len(token) > 78 and line != start:
                lines.append(line)
                line = ""
            line += " " + token
        lines.append(line)
        return self.linesep.join(lines) + self.linesep


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


_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to", "sender"})
WIRE = _WirePolicy(linesep="\r\n", max_line_length=78)


def message_id(notification_id: str) -> str:
    """The same for every attempt at one notification: a resend after a crash is recognisable."""
    return f"<{hashlib.sha256(notification_id.encode()).hexdigest()[:32]}@baocao>"


def build_email(message: Outgoing, sender: str, now: dt.datetime | None = None) -> EmailMessage:
    name, address = parseaddr(sender)
    email = EmailMessage()
    email["From"] = Address(display_name=name, addr_spec=address)
    email["To"] = Address(display_name=message.recipient_name, addr_spec=message.recipient)
    if message.reply_to:
        email["Reply-To"] = Address(display_name=message.reply_to_name, addr_spec=message.reply_to)
    email["Subject"] = message.subject
    email["Date"] = formatdate(
        (now or dt.datetime.now(dt.UTC)).timestamp(), localtime=False, usegmt=True
    )
    mid = message_id(message.notification_id)
    email["Message-ID"] = mid
    email["X-Baocao-Notification"] = mid.strip("<>").removesuffix("@baocao")
    # RFC 3834: no vacation responder or auto-reply should answer this.
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.text, charset="utf-8")
    email.add_alternative(html_of(message.subject, message.text), subtype="html", charset="utf-8")
    return email


def wire_bytes(email: EmailMessage) -> bytes:
    """The message as sent: CRLF line ends, headers folded by :data:`WIRE`."""
    return email.as_bytes(policy=WIRE)


class SmtpMailer(Mailer):
    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 20.0,
    ) -> None:
        self._host, self._port, self._sender = host, port, sender
        self._username, self._password = username, password
        self._starttls, self._timeout = starttls, timeout

    async def send(self, message: Outgoing) -> None:
        try:
            await aiosmtplib.send(
                wire_bytes(build_email(message, self._sender)),
                sender=parseaddr(self._sender)[1],
                recipients=[message.recipient],
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                start_tls=self._starttls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            raise SendFailed(f"recipient refused: {error}", permanent=True) from error
        except aiosmtplib.SMTPResponseException as error:
            # 5xx is the server's final word; 4xx (and anything else) may pass later.
            raise SendFailed(
                f"{error.code} {error.message}", permanent=500 <= error.code < 600
            ) from error
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise SendFailed(f"{type(error).__name__}: {error}", permanent=False) from error
