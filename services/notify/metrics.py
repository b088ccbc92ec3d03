from prometheus_client import CollectorRegistry, Counter


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._outcomes = Counter(
            "baocao_notifications",
            "notifications by channel and outcome (sent, failed, retried, duplicate)",
            ["channel", "outcome"],
            registry=registry,
        )

    def outcome(self, channel: str, outcome: str) -> None:
        self._outcomes.labels(channel, outcome).inc()
