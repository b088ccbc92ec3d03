"""Turning events into delivered messages, each exactly once in the ledger."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from contracts.envelope import Event
from contracts.events import (
    NotificationFailed,
    NotificationFailedPayload,
    NotificationSent,
    NotificationSentPayload,
)
from services.common.clock import Clock
from services.common.consumer import PermanentError
from services.common.reference import Catalog
from services.notify.domain import Outgoing, messages_for
from services.notify.mailer import Mailer, SendFailed
from services.notify.metrics import NotifyMetrics
from services.notify.store import FAILED, PENDING, SENT, Ledger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    catalog: Catalog
    ledger: Ledger
    mailer: Mailer
    clock: Clock
    metrics: NotifyMetrics
    wake_relay: Callable[[], None]
    attempts: int = 5
    first_delay: float = 2.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


async def on_event(event: Event, *, delivery: Delivery) -> None:
    """Receipt, reminder or overdue notice for the unit the event is about."""
    plan = delivery.catalog.plan(event.payload.plan_id)
    if plan is None:
        raise PermanentError(f"plan {event.payload.plan_id!r} is not loaded here")
    for message in messages_for(event, plan):
        await deliver(message, delivery)


async def deliver(message: Outgoing, d: Delivery) -> None:
    entry = await d.ledger.claim(message, d.clock.now())
    if entry["status"] != PENDING:
        d.metrics.outcome(message.channel, "duplicate")
        return
    failed_attempts = int(entry["attempts"])  # > 0 when a crash interrupted an earlier try
    while True:
        try:
            await d.mailer.send(message)
        except SendFailed as error:
            attempts = failed_attempts = await d.ledger.attempted(
                message.notification_id, str(error)
            )
            if error.permanent or attempts >= d.attempts:
                await d.ledger.finish(
                    message.notification_id,
                    FAILED,
                    _failed(message, attempts, error, d.clock),
                    d.clock.now(),
                )
                d.metrics.outcome(message.channel, "failed")
                log.error(
                    "notification %s failed after %d attempt(s): %s",
                    message.notification_id,
                    attempts,
                    error,
                )
                d.wake_relay()
                return
            d.metrics.outcome(message.channel, "retried")
            await d.sleep(d.first_delay * 2 ** (attempts - 1))
            continue
        attempts = failed_attempts + 1
        await d.ledger.finish(
            message.notification_id, SENT, _sent(message, attempts, d.clock), d.clock.now()
        )
        d.metrics.outcome(message.channel, "sent")
        d.wake_relay()
        return


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


def _sent(message: Outgoing, attempts: int, clock: Clock) -> NotificationSent:
    now = clock.now()
    return NotificationSent(
        occurred_at=now,
        producer="notify",
        correlation_id=message.cause.correlation_id,
        causation_id=message.cause.event_id,
        payload=NotificationSentPayload.model_validate(
            {**_common(message, attempts), "sent_at": now}
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
                "permanent": True,
            }
        ),
    )
