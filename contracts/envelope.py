"""The envelope every baocao event travels in."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator


class Payload(BaseModel):
    """Base of event payloads: frozen, and tolerant of fields added by newer producers."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Event(BaseModel):
    """Envelope fields first, then the typed ``payload``.

    Each event class narrows ``event_type`` and ``schema_version`` to literals and types its
    ``payload``. Consumers ignore unknown fields; a producer never removes or retypes a field
    within a version: a breaking change is a new version, a new class and a new topic.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    event_type: str
    schema_version: int
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1, description="the service that published the event")
    correlation_id: uuid.UUID
    """Shared by every event of one business flow (a submission, a period's closing)."""
    causation_id: uuid.UUID | None = None
    """The event that caused this one, if any."""
    payload: Any

    @field_validator("occurred_at")
    @classmethod
    def _to_utc(cls, value: dt.datetime) -> dt.datetime:
        return value.astimezone(dt.UTC)
