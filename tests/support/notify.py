"""notify's delivery over in-memory fakes: a scripted mailer and a ``Delivery`` to drive."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prometheus_client import CollectorRegistry

from contracts.events import NotificationFailed, NotificationSent
from services.common.clock import FixedClock
from services.common.mongo import Document
from services.common.outbox import READY
from services.common.reference import Catalog
from services.notify.domain import Outgoing
from services.notify.handlers import Delivery, retry_due
from services.notify.mailer import Mailer, SendFailed
from services.notify.metrics import NotifyMetrics
from services.notify.store import OUTCOMES
from tests.support.fakes import FakeLedger, MemoryOutbox

SEED = Path(__file__).resolve().parents[2] / "data" / "plans" / "kh-nq35-ngoc-hoi.yaml"
NOW = dt.datetime(2027, 6, 14, 16, 31, tzinfo=dt.UTC)
FIRST_DELAY = 2.0
LEASE = dt.timedelta(seconds=120)


class FakeMailer(Mailer):
    """Fails with the scripted errors first, then accepts everything."""

    def __init__(self, *failures: SendFailed) -> None:
        self.failures = list(failures)
        self.sent: list[Outgoing] = []
        self.calls = 0

    async def send(self, message: Outgoing) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)


def transient() -> SendFailed:
    return SendFailed("421 4.3.2 Service not available", permanent=False)


class Notifier:
    def __init__(
        self, mailer: Mailer, *, attempts: int = 5, owner: str = "here:1", fan_out: int = 8
    ) -> None:
        self.catalog = Catalog.load([SEED])
        self.ledger = FakeLedger()
        self.mailer = mailer
        self.registry = CollectorRegistry()
        self.clock = FixedClock(NOW)
        self.outbox = MemoryOutbox(self.clock)
        self.wakes = 0
        self.delivery = Delivery(
            self.catalog,
            self.ledger,
            self.outbox,
            mailer,
            self.clock,
            NotifyMetrics(self.registry),
            self.wake,
            owner=owner,
            attempts=attempts,
            first_delay=FIRST_DELAY,
            lease=LEASE,
            fan_out=fan_out,
        )

    def wake(self) -> None:
        self.wakes += 1

    def outcome(self, outcome: str) -> float:
        return (
            self.registry.get_sample_value(
                "baocao_notifications_total", {"channel": "email", "outcome": outcome}
            )
            or 0.0
        )

    def only_outcome(self) -> Document:
        [outcome] = self.ledger.outcomes.values()
        return outcome

    def only_in_flight(self) -> Document:
        [entry] = self.ledger.inflight.values()
        return entry

    def announced(self) -> NotificationSent | NotificationFailed:
        """The one event in the outbox, ready, announcing an outcome."""
        [entry] = self.outbox.all()
        assert entry["state"] == READY
        assert entry["ref"]["collection"] == OUTCOMES
        [event] = self.outbox.events()
        assert isinstance(event, NotificationSent | NotificationFailed)
        return event

    async def retry_when_due(self) -> int:
        """Move the clock to the in-flight entry's next attempt and run the retrier."""
        self.clock.at = self.only_in_flight()["next_attempt_at"]
        return await retry_due(self.delivery)
