"""Sending SMS: a provider interface, an HTTP gateway (how Vietnamese brandname gateways are
driven: a URL, a credential and a body with the number and the text) and a log-only provider
for development. :class:`SmsSender` is the SMS channel of :class:`ByChannel`."""

from __future__ import annotations

import abc
import logging
import re
from collections.abc import Callable, Mapping

import httpx
import jinja2

from services.notify.domain import Outgoing
from services.notify.mailer import Mailer, SendFailed
from services.notify.sms_rules import Segments, segments, unaccented

log = logging.getLogger(__name__)

DEFAULT_BODY = '{"to": {{ to | tojson }}, "text": {{ text | tojson }}}'


class SmsProvider(abc.ABC):
    @abc.abstractmethod
    async def send(self, to: str, text: str) -> None:
        """Hand one SMS to the provider or raise :class:`SendFailed`."""


class LogSmsProvider(SmsProvider):
    """Development: every SMS is a log line (and kept in ``sent``), none leaves the machine."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def send(self, to: str, text: str) -> None:
        self.sent.append((to, text))
        log.info("SMS to %s: %s", to, text)


class HttpSmsGateway(SmsProvider):
    """POST ``body_template`` (Jinja2 with ``to`` and ``text``) to ``url``. 2xx is sent;
    429, 5xx, timeouts and refused connections may pass later; any other answer is final
    (an invalid number, a refused brandname).

    Many brandname gateways answer 200 with an error code in their JSON (an invalid number,
    an empty balance): with ``success_pattern`` a 2xx is sent only if its body matches that
    regular expression, and otherwise failed, final or not as ``mismatch_permanent`` says."""

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body_template: str = DEFAULT_BODY,
        content_type: str = "application/json",
        timeout: float = 10.0,
        success_pattern: str | None = None,
        mismatch_permanent: bool = True,
    ) -> None:
        self._url = url
        self._success = re.compile(success_pattern) if success_pattern else None
        self._mismatch_permanent = mismatch_permanent
        self._headers = {"Content-Type": content_type, **(headers or {})}
        self._body = jinja2.Environment(autoescape=False).from_string(body_template)  # noqa: S701
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    async def send(self, to: str, text: str) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        body = self._body.render(to=to, text=text).encode()
        try:
            response = await self._client.post(self._url, content=body, headers=self._headers)
        except httpx.HTTPError as error:
            message = f"SMS gateway: {type(error).__name__}: {error}"
            raise SendFailed(message, permanent=False) from error
        if response.is_success:
            if self._success is None or self._success.search(response.text):
                return
            reason = f"SMS gateway answered {response.status_code} without success: "
            raise SendFailed(reason + response.text[:200], permanent=self._mismatch_permanent)
        status = response.status_code
        reason = f"SMS gateway answered {status}: {response.text[:200]}"
        raise SendFailed(reason, permanent=not (status == 429 or status >= 500))

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class SmsSender(Mailer):
    """The SMS channel: the text (unaccented if configured) to the provider, its segments
    counted and reported."""

    def __init__(
        self,
        provider: SmsProvider,
        *,
        without_diacritics: bool = False,
        on_segments: Callable[[Segments], None] | None = None,
    ) -> None:
        self._provider = provider
        self._without_diacritics = without_diacritics
        self._on_segments = on_segments or (lambda _segments: None)

    async def close(self) -> None:
        close = getattr(self._provider, "close", None)
        if close is not None:
            await close()

    def text_of(self, message: Outgoing) -> str:
        return unaccented(message.text) if self._without_diacritics else message.text

    def segments_of(self, message: Outgoing) -> Segments:
        return segments(self.text_of(message))

    async def send(self, message: Outgoing) -> None:
        text = self.text_of(message)
        await self._provider.send(message.recipient, text)
        self._on_segments(segments(text))


class ByChannel(Mailer):
    """Each message to the sender of its channel."""

    def __init__(self, senders: Mapping[str, Mailer]) -> None:
        self._senders = dict(senders)

    async def send(self, message: Outgoing) -> None:
        sender = self._senders.get(message.channel)
        if sender is None:
            raise SendFailed(f"no sender for channel {message.channel!r}", permanent=True)
        await sender.send(message)

    def segments_of(self, message: Outgoing) -> Segments | None:
        sender = self._senders.get(message.channel)
        return sender.segments_of(message) if sender is not None else None
