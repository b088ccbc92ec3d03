from typing import get_args

from prometheus_client import CollectorRegistry, Counter

from contracts.events import Channel
from services.notify.sms_rules import Segments

NOTICE_TYPES = (
    "receipt",
    "reminder",
    "overdue",
    "returned",
    "accepted",
    "extension",
    "exception",
    "consolidated",
    "summary",
)


OUTCOME_LABELS = {
    "sent": "handed to the channel",
    "failed": "given up on (refused for good, or every attempt failed)",
    "retried": "an attempt failed, tried again later",
    "deferred": "held back by quiet hours (SMS)",
    "duplicate": "already claimed by another delivery, not sent again",
    "finish_retried": "sent or given up on, but storing that outcome failed and is retried",
}
"""Every value of the ``outcome`` label, with what it means (the metric's help lists them)."""


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._outcomes = Counter(
            "baocao_notifications",
            "notifications by channel and outcome: "
            + "; ".join(f"{outcome}: {meaning}" for outcome, meaning in OUTCOME_LABELS.items()),
            ["channel", "outcome"],
            registry=registry,
        )
        # Every series exists from the start: increase() over a series born at 1 is 0, and the
        # alert on failed notices would miss the first failure.
        for channel in get_args(Channel):
            for outcome in OUTCOME_LABELS:
                self._outcomes.labels(channel, outcome)

        self._notices = Counter(
            "baocao_notices",
            "notifications by channel, notice type (template) and outcome",
            ["channel", "template", "outcome"],
            registry=registry,
        )
        for channel in get_args(Channel):
            for template in NOTICE_TYPES:
                for outcome in ("sent", "failed", "retried", "deferred"):
                    self._notices.labels(channel, template, outcome)
        self._sessions = Counter(
            "baocao_notify_smtp_sessions",
            "SMTP sessions of the pool: opened, closed, rotated (a send retried on a new one)",
            ["event"],
            registry=registry,
        )
        for event in ("opened", "closed", "rotated"):
            self._sessions.labels(event)
        self._segments = Counter(
            "baocao_notify_sms_segments",
            "SMS segments handed to the provider, by encoding (gsm7: 160/153, ucs2: 70/67)",
            ["encoding"],
            registry=registry,
        )
        for encoding in ("gsm7", "ucs2"):
            self._segments.labels(encoding)

    def sms_segments(self, segments: Segments) -> None:
        self._segments.labels(segments.encoding).inc(segments.count)

    def smtp_session(self, event: str) -> None:
        self._sessions.labels(event).inc()

    def outcome(self, channel: str, outcome: str, template: str | None = None) -> None:
        self._outcomes.labels(channel, outcome).inc()
        if template is not None:
            self._notices.labels(channel, template, outcome).inc()
