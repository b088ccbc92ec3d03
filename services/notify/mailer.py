"""Sending e-mail over SMTP with aiosmtplib, and telling a retryable failure from a final one."""

from __future__ import annotations

import abc
import hashlib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from services.notify.domain import Outgoing


class SendFailed(Exception):
    """The message was not accepted; ``permanent`` says whether trying again can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(abc.ABC):
    @abc.abstractmethod
    async def send(self, message: Outgoing) -> None:
        """Hand the message to the gateway or raise :class:`SendFailed`."""


def build_email(message: Outgoing, sender: str) -> EmailMessage:
    name, address = parseaddr(sender)
    email = EmailMessage()
    # EmailMessage encodes non-ASCII headers as RFC 2047 and the body as UTF-8.
    email["From"] = str(Address(display_name=name, addr_spec=address))
    email["To"] = str(Address(display_name=message.recipient_name, addr_spec=message.recipient))
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False, usegmt=True)
    # Stable per notification: a resend after a crash can be recognised downstream.
    digest = hashlib.sha256(message.notification_id.encode()).hexdigest()[:32]
    email["Message-ID"] = f"<{digest}@baocao>"
    email["X-Baocao-Notification"] = digest
    email.set_content(message.text, charset="utf-8")
    return email


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
                build_email(message, self._sender),
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
