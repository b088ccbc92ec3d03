"""Turning events into delivered messages, each exactly once.

A Kafka handler claims each message and makes one attempt, bounded by the mailer's timeout,
then returns: a failed attempt is scheduled in the ledger with a growing, jittered delay and
retried by :func:`retry_due` in the background, never by sleeping inside the handler, so a
handler returns well within the consumer's poll interval whatever the mail server does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from contracts.envelope import Event
from contracts.events import (
    NotificationFailed,
    NotificationFailedPayload,
    NotificationSent,
    NotificationSentPayload,
)
from services.common.clock import Clock
from services.common.failures import PermanentError, is_transient
from services.common.mongo import Document
from services.common.outbox import Outbox, Ref
from services.common.reference import Catalog
from services.notify.domain import Outgoing, messages_for
from services.notify.fanout import each_bounded
from services.notify.mailer import Mailer, SendFailed
from services.notify.metrics import NotifyMetrics
from services.notify.sms_rules import Segments, quiet_until
from services.notify.store import FAILED, OUTCOMES, SENT, Failure, Ledger, message_from

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    catalog: Catalog
    ledger: Ledger
    outbox: Outbox
    mailer: Mailer
    clock: Clock
    metrics: NotifyMetrics
    wake_relay: Callable[[], None]
    owner: str
    """This process, as lease holder."""
    attempts: int = 5
    first_delay: float = 2.0
    lease: dt.timedelta = dt.timedelta(seconds=120)
    """Longer than one attempt can take (the mailer's timeouts), so a live holder keeps it."""
    portal_url: str = ""
    """Where the links in a message point (the submissions service's pages)."""
    channels: tuple[str, ...] = ("email",)
    """The channels this deployment sends on (SMS needs a provider)."""
    quiet_hours: tuple[dt.time, dt.time] | None = (dt.time(21), dt.time(7))
    """Local hours (the plan's time zone) when no SMS goes out: it waits for their end."""
    fan_out: int = 8
    """Messages in progress at once in this process, whichever events (handled concurrently)
    or retrier pass they come from. The SMTP pool bounds the sends themselves; more than its
    size lets ledger writes overlap with them."""
    slots: asyncio.Semaphore = field(init=False, repr=False, compare=False)
    """``fan_out`` of them: taken by each message while it is claimed, sent and recorded."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "slots", asyncio.Semaphore(self.fan_out))


async def on_event(event: Event, *, delivery: Delivery) -> None:
    """The notice an event calls for, to the unit it is about (or the district leadership)."""
    plan = delivery.catalog.plan(event.payload.plan_id)
    if plan is None:
        raise PermanentError(f"plan {event.payload.plan_id!r} is not loaded here")
    messages = messages_for(event, plan, delivery.portal_url, delivery.channels)

    # Returns (and the event is acknowledged) only when every message is recorded as sent or
    # failed, or scheduled in the ledger for the retrier; if one raised, the consumer runs the
    # event again and the ledger turns the others into duplicates.
    async def one(message: Outgoing) -> None:
        async with delivery.slots:
            await deliver(message, delivery)

    await each_bounded(messages, delivery.fan_out, one)


async def deliver(message: Outgoing, d: Delivery) -> None:
    if not await d.ledger.claim(message, d.owner, d.clock.now(), d.lease):
        d.metrics.outcome(message.channel, "duplicate", message.template)
        return
    await attempt(message, 0, d)


async def retry_due(d: Delivery, limit: int = 100) -> int:
    """One pass of the retrier: attempt every due entry whose lease this process takes."""
    tried = 0

    async def one(entry: Document) -> None:
        nonlocal tried
        async with d.slots:
            if await d.ledger.take_over(entry, d.owner, d.clock.now(), d.lease):
                tried += 1
                await attempt(message_from(entry), int(entry["attempts"]), d)

    await each_bounded(await d.ledger.due(d.clock.now(), limit), d.fan_out, one)
    return tried


async def attempt(message: Outgoing, failed_before: int, d: Delivery) -> None:
    if message.channel == "sms" and (until := _quiet_until(message, d)) is not None:
        # Deferred, not failed: the retrier takes it up when the quiet hours end.
        await d.ledger.attempted(
            message.notification_id, failed_before, "deferred: quiet hours", until
        )
        d.metrics.outcome(message.channel, "deferred", message.template)
        return
    try:
        await d.mailer.send(message)
    except SendFailed as error:
        attempts = failed_before + 1
        if error.permanent or attempts >= d.attempts:
            await _finish(message, FAILED, attempts, d, _failed(message, attempts, error, d.clock))
            log.error(
                "notification %s failed after %d attempt(s): %s",
                message.notification_id,
                attempts,
                error,
            )
            return
        delay = d.first_delay * 2 ** (attempts - 1) * random.uniform(0.8, 1.2)
        next_at = d.clock.now() + dt.timedelta(seconds=delay)
        await d.ledger.attempted(message.notification_id, attempts, str(error), next_at)
        d.metrics.outcome(message.channel, "retried", message.template)
        return
    attempts = failed_before + 1
    sent = _sent(message, attempts, d.clock, d.mailer.segments_of(message))
    await _finish(message, SENT, attempts, d, sent)


def _quiet_until(message: Outgoing, d: Delivery) -> dt.datetime | None:
    if d.quiet_hours is None:
        return None
    plan = d.catalog.plan(message.plan_id)
    tz = plan.tz if plan is not None else ZoneInfo("Asia/Ho_Chi_Minh")
    return quiet_until(d.clock.now(), tz, *d.quiet_hours)


async def _finish(message: Outgoing, status: str, attempts: int, d: Delivery, event: Event) -> None:
    """Record the outcome, however long the store takes: the message is already sent (or
    given up on), and an entry left in flight would be sent again when its lease runs out."""
    pause = 0.2
    while True:
        try:
            await _record_outcome(message, status, attempts, d, event)
            return
        except Exception as error:
            if not is_transient(error):
                raise
            d.metrics.outcome(message.channel, "finish_retried")
            log.warning(
                "notification %s %s, recording it failed (%s: %s); retrying",
                message.notification_id,
                status,
                type(error).__name__,
                error,
            )
            await asyncio.sleep(pause)
            pause = min(pause * 2, 10.0)
            # A new event id: the intent of the failed try may be stored, and is dropped by
            # the relay because no outcome names it.
            event = event.model_copy(update={"event_id": uuid.uuid4()})


async def _record_outcome(
    message: Outgoing, status: str, attempts: int, d: Delivery, event: Event
) -> None:
    entry = await d.outbox.intend(event, Ref(OUTCOMES, message.notification_id))
    failure = (
        Failure(event.payload.error, event.payload.permanent)
        if isinstance(event, NotificationFailed)
        else None
    )
    sms = d.mailer.segments_of(message)
    if not await d.ledger.finish(
        message, status, attempts, entry["_id"], d.clock.now(), failure, sms
    ):
        await d.outbox.abandon(entry)  # the other holder's outcome is the one announced
        return
    await d.outbox.commit(entry)
    d.metrics.outcome(message.channel, status, message.template)
    d.wake_relay()


def _common(message: Outgoing, attempts: int) -> dict[str, object]:
    return {
        "notification_id": message.notification_id,
        "channel": message.channel,
        "template": message.template,
        "recipient": message.recipient,
        "unit_id": message.unit_id,
        "plan_id": message.plan_id,
        "period_id": message.period_id,
        "cause_event_id": str(message.cause.event_id),
        "cause_event_type": message.cause.event_type,
        "attempts": max(attempts, 1),
    }


def _sent(message: Outgoing, attempts: int, clock: Clock, sms: Segments | None) -> NotificationSent:
    now = clock.now()
    cost = {"sms_segments": sms.count, "sms_encoding": sms.encoding} if sms else {}
    return NotificationSent(
        occurred_at=now,
        producer="notify",
        correlation_id=message.cause.correlation_id,
        causation_id=message.cause.event_id,
        payload=NotificationSentPayload.model_validate(
            {**_common(message, attempts), "sent_at": now, **cost}
        ),
    )


def _failed(
    message: Outgoing, attempts: int, error: SendFailed, clock: Clock
) -> NotificationFailed:
    now = clock.now()
    return NotificationFailed(
        occurred_at=now,
        producer="notify",
        correlation_id=message.cause.correlation_id,
        causation_id=message.cause.event_id,
        payload=NotificationFailedPayload.model_validate(
            {
                **_common(message, attempts),
                "failed_at": now,
                "error": str(error)[:1000],
                # Refused outright, or transient errors until the retries ran out.
                "permanent": error.permanent,
            }
        ),
    )
