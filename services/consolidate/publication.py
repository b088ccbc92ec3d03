"""The events of one report version: v2 always, v1 beside it when it fits in a Kafka record.

v1 carries the per-unit detail inline, about 1.5 KB of JSON a unit: from some 700 units it is
larger than what Kafka takes in one record. Such a v1 never enters the outbox (the relay would
only park it, and from about 10,000 units the entry would pass MongoDB's 16 MB per document
before that): the version goes out on v2 alone, which a log line and
``baocao_reports_v1_withheld_total`` say. The limit is intake's and every consumer's,
``MAX_EVENT_BYTES`` (1 MiB less room for the key, headers and batch framing).

Pure: the events are built here, written by the handler.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contracts.events import ReportConsolidated, ReportConsolidatedPayload
from contracts.report_v2 import ReportConsolidatedV2, ReportConsolidatedV2Payload
from services.common.consumer import MAX_EVENT_BYTES

PRODUCER = "consolidate"
V1_LIMIT = MAX_EVENT_BYTES
"""The largest v1 event (its JSON, in bytes) published beside v2."""


@dataclass(frozen=True)
class Announcement:
    v2: ReportConsolidatedV2
    v1: ReportConsolidated | None
    """None: withheld, it would not fit in a record."""
    v1_bytes: int
    """The v1 event's size; when withheld on the detail's size alone, that size (a v1 holds
    the same lists, so it is at least as large) instead of the JSON it was not worth writing."""


def announcement(
    whole: ReportConsolidatedPayload,
    v2: ReportConsolidatedV2Payload,
    *,
    occurred_at: datetime,
    correlation_id: uuid.UUID,
    causation_id: uuid.UUID | None,
    limit: int = V1_LIMIT,
) -> Announcement:
    """``whole``: the version's v1 payload (with its document); ``v2``: the same version cut."""
    envelope: dict[str, Any] = {
        "occurred_at": occurred_at,
        "producer": PRODUCER,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
    }
    second = ReportConsolidatedV2(**envelope, payload=v2)
    if v2.detail.size > limit:
        # Tens of MB at a national roll-up: not serialised only to be measured.
        return Announcement(second, None, v2.detail.size)
    first = ReportConsolidated(**envelope, payload=whole)
    size = len(first.model_dump_json().encode())
    return Announcement(second, first if size <= limit else None, size)
